"""bench.fleetscale's baselines: bare device sessions, and a request/answer echo over the broker."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from typing import Any

from bench.fleetbase import ROOT, RUN, percentiles, rss_kib, until

# --- the sessions baseline (its own interpreter) ---------------------------------------


async def sessions(n: int, impl: str, idle_s: float) -> dict[str, Any]:
    """N bare device sessions (id, last will, birth, one subscription): connect, RSS, idle."""
    from bench.aiomqttclient import AiomqttTransport
    from switchgear.links.twinsession import SessionPool

    tag = f"sgbench-{secrets.token_hex(3)}"
    up = 0
    done = asyncio.Event()

    def state(ok: bool) -> None:
        nonlocal up
        if ok:
            up += 1
            if up == n:
                done.set()

    rss0, cpu0, t0 = rss_kib(os.getpid()), time.process_time(), time.perf_counter()
    pool = SessionPool(*RUN.broker)
    clients: list[Any] = []
    for i in range(n):
        online = (f"{tag}/{i}/online", b"false")
        birth = (online[0], b"true")
        c: Any
        if impl == "lean":
            c = pool.session(f"{tag}-{i}", will=online, birth=birth)
        else:
            c = AiomqttTransport(*RUN.broker, f"{tag}-{i}", will=online, birth=birth)
        await c.subscribe(f"{tag}/{i}/rpc")
        c.start(lambda _t, _p: None, state)
        clients.append(c)
    await asyncio.wait_for(done.wait(), 300)
    connect_s, connect_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss = rss_kib(os.getpid()) - rss0
    c0 = time.process_time()
    await asyncio.sleep(idle_s)
    idle = (time.process_time() - c0) / idle_s
    for c in clients:  # a clean leave, then the retained `online` cleared
        await c.close()
    await pool.close()
    cleaner = SessionPool(*RUN.broker).session(f"{tag}-clean")
    cleaner.start(lambda _t, _p: None, lambda _u: None)
    await until(lambda: cleaner.ready, 30, "cleaner")
    for i in range(n):
        if i % 500 == 0:  # within the session's in-flight bound
            await until(lambda: cleaner.in_flight < 500, 60, "retained cleared")
        cleaner.put(f"{tag}/{i}/online", b"", True)
    await until(lambda: cleaner.in_flight == 0, 60, "retained cleared")
    await cleaner.close()
    return {"impl": impl, "sessions": n, "connect_s": round(connect_s, 2),
            "connect_cpu_s": round(connect_cpu, 2), "rss_kib_per_session": round(rss / n, 1),
            "idle_core_pct": round(idle * 100, 2)}  # fmt: skip


def run_sessions(n: int, impl: str, idle_s: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.fleetscale", "sessions", "--devices", str(n),
           "--impl", impl, "--idle-s", str(idle_s), "--link", RUN.link, "--json"]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


# --- the echo baseline --------------------------------------------------------------


async def echo(count: int, rate: float) -> dict[str, float]:
    """The fair baseline: a request/answer over the broker with the server's own lean
    client at both ends (QoS 1, open loop at `rate`, answered at once), with its CPU."""
    from switchgear.links.leanmqtt import LeanTransport

    tag = f"sgbench-echo-{secrets.token_hex(3)}"
    sent: dict[int, float] = {}
    lat: list[float] = []
    done = asyncio.Event()
    asker = LeanTransport(*RUN.broker, f"{tag}-a")
    answerer = LeanTransport(*RUN.broker, f"{tag}-b")
    pending: set[asyncio.Task[None]] = set()

    def answer(_topic: str, payload: bytes) -> None:  # as a device: answers at once
        task = asyncio.create_task(answerer.publish(f"{tag}/ans", payload))
        pending.add(task)
        task.add_done_callback(pending.discard)

    def hear(_topic: str, payload: bytes) -> None:
        lat.append(time.perf_counter() - sent.pop(int(payload)))
        if len(lat) == count:
            done.set()

    ups = [asyncio.Event(), asyncio.Event()]
    answerer.start(answer, lambda up: up and ups[0].set())
    asker.start(hear, lambda up: up and ups[1].set())
    try:
        await answerer.subscribe(f"{tag}/req")
        await asker.subscribe(f"{tag}/ans")
        await asyncio.wait_for(asyncio.gather(*(u.wait() for u in ups)), 10)
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(count):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            sent[i] = time.perf_counter()
            await asker.publish(f"{tag}/req", str(i).encode())
        await asyncio.wait_for(done.wait(), 60)
        cpu_ms = (time.process_time() - cpu0) / count * 1000
    finally:
        await asker.close()
        await answerer.close()
    return {**percentiles(lat), "cpu_ms_each": round(cpu_ms, 3)}


async def echo_aiomqtt(count: int, rate: float) -> dict[str, float]:
    """The same echo with aiomqtt (paho) at both ends, as the server's connection was."""
    import aiomqtt

    tag = f"sgbench-echo-{secrets.token_hex(3)}"
    sent: dict[int, float] = {}
    lat: list[float] = []
    done = asyncio.Event()
    window = {"max_inflight_messages": 1000}  # as the server's transport
    async with (
        aiomqtt.Client(*RUN.broker, identifier=f"{tag}-a", **window) as asker,  # type: ignore[arg-type]
        aiomqtt.Client(*RUN.broker, identifier=f"{tag}-b", **window) as answerer,  # type: ignore[arg-type]
    ):
        asker.pending_calls_threshold = answerer.pending_calls_threshold = 1000
        await answerer.subscribe(f"{tag}/req", qos=1)
        await asker.subscribe(f"{tag}/ans", qos=1)

        pending: set[asyncio.Task[None]] = set()

        def spawn(coro: Any) -> None:
            task = asyncio.create_task(coro)
            pending.add(task)
            task.add_done_callback(pending.discard)

        async def answer() -> None:
            async for m in answerer.messages:  # as a device: answers in parallel
                spawn(answerer.publish(f"{tag}/ans", m.payload, qos=1))

        async def hear() -> None:
            async for m in asker.messages:
                i = int(bytes(m.payload))  # type: ignore[arg-type]
                lat.append(time.perf_counter() - sent.pop(i))
                if len(lat) == count:
                    done.set()

        tasks = [asyncio.create_task(answer()), asyncio.create_task(hear())]
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(count):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            sent[i] = time.perf_counter()
            spawn(asker.publish(f"{tag}/req", str(i).encode(), qos=1))
        send_cpu = time.process_time() - cpu0
        cpu0 = time.process_time()
        await asyncio.wait_for(done.wait(), 60)
        cpu_ms = (time.process_time() - cpu0) / count * 1000  # (the sending's CPU: below)
        for t in tasks:
            t.cancel()
    return {**percentiles(lat), "cpu_ms_each": round(cpu_ms + send_cpu / count * 1000, 3)}


# --- the scale-out run ----------------------------------------------------------------
