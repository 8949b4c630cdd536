"""Benchmark: issue #22's scale-out figures, over the machine's Mosquitto and PostgreSQL.

    python -m bench.fleetscale [--devices 10000] [--processes 2] [--rate 500] [--idle-s 60]
    python -m bench.fleetscale sessions --devices 10000 [--impl lean|aiomqtt]   # a baseline alone
    python -m bench.fleetscale ffr --devices 3000 [--rate 1000]   # FFR alone, quick to iterate

One run, four figures, each beside its baseline:
1. **Sessions.** N power controllers are registered on a server (this process: a Runtime
   with `fleet=external`, speed 1, a fresh PostgreSQL database); then `--processes`
   `switchgear fleet` processes start, each twin its own MQTT session, and the time until
   the server sees every device online is taken, with the fleet processes' RSS. Baseline:
   the same number of bare sessions (no twins, no database) in one process, the lean
   session the fleet uses and, for comparison, one aiomqtt client each (the fleet's first
   design).
2. **Idle.** The fleet processes' and the server's CPU over `--idle-s` seconds with
   nothing asked, as a share of one core; plus the 15-minute status cadence, priced at
   the CPU per report measured in the FFR burst (10,000 reports / 900 s = 11 a second).
3. **Command round trip.** N `pc.config` commands (FFR on, as the seed's), one per
   device, sent open-loop at `--rate` a second through the engine: send → device runs it
   → NVRAM durable → answer → command record durable. Baseline: a raw echo (request
   and answer over the same broker, QoS 1) at the same rate with the server's lean client
   at both ends, and the same echo with aiomqtt (paho), labelled as such.
4. **FFR.** The grid steps to 59.6 Hz for the account; wall time until all N `relay/ffr`
   statuses are rows in PostgreSQL, and their instants against the step (the physics is
   `periods` cycles of 60 Hz). Baseline: `bench.ffr` in-process (one process, no broker).

The broker is a Mosquitto of the run's own (`mosquitto -c` with the settings in
`fleetbase.BROKER_CONF`, on a free loopback port) unless `--link` names one: Mosquitto's defaults
(`max_queued_messages 1000`, `max_inflight_messages 20`) drop QoS 1 messages to a
subscriber that is more than 1,000 behind, and the server is one subscriber for every
device, so a 10,000-device burst (the FFR step) loses reports on a default broker
(docs/mqtt.md, "Broker settings for a fleet"). Client ids and topics carry a random tag;
every session is closed and every retained `online` message cleared at the end, and the
database is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import platform
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.fleetbase import (
    PG_ADMIN,
    PROFILE,
    ROOT,
    RUN,
    admin,
    arun,
    cpu_s,
    fleet_proc,
    own_broker,
    percentiles,
    profiling,
    rss_kib,
    until,
)
from bench.fleetbaselines import echo, echo_aiomqtt, run_sessions, sessions
from bench.fleetprobes import SLOW_S, db_probe, postgres_cpu_s, spread, timeline

FFR = {"enable": True, "tripThreshold": 59.7, "returnThreshold": 59.8, "periods": 10, "delay": 10}


async def commands(rt: Any, account_id: int, ids: list[int], pids: list[int],
                   rate: float, url: str) -> dict[str, Any]:  # fmt: skip
    """One `pc.config` (FFR on) to each device, open loop at `rate`: latency and CPU; and
    beside the stream, the database's own commit time (`db_probe`)."""
    from switchgear.core.model import FirmwareCommand

    lat: list[float] = []
    answered: list[float] = []  # send -> the device's answer back in the server
    commits: list[float] = []  # the server's group commits: how long each took
    slow: list[tuple[float, float, float]] = []  # (sent at, answered in, done in) > SLOW_S
    long_commits: list[tuple[float, float]] = []  # (ended at, took) of commits > SLOW_S
    t0 = time.perf_counter()
    failed = 0
    link, send, journal = rt.fleet_link, rt.fleet_link.send, rt.journal
    observe = journal.on_commit

    async def timed_send(device_id: int, command: Any) -> Any:
        t = time.perf_counter()
        result = await send(device_id, command)
        answered.append(time.perf_counter() - t)
        answer_of[device_id] = answered[-1]
        return result

    answer_of: dict[int, float] = {}  # a device's send -> answer, for the slow ones' split

    def commit(size: int, took: float) -> None:
        commits.append(took)
        if took > SLOW_S:
            long_commits.append((time.perf_counter() - t0, took))
        if observe is not None:
            observe(size, took)

    async def one(device_id: int) -> None:
        nonlocal failed
        t = time.perf_counter()
        rec = await rt.engine.command(account_id, device_id,
                                      FirmwareCommand("pc.config", {"ffr": FFR}))  # fmt: skip
        took = time.perf_counter() - t
        lat.append(took)
        if took > SLOW_S:
            ans = answer_of.get(device_id, float("nan"))
            slow.append((t - t0, ans, took))
        failed += rec.state.value != "done"

    gc_passes: list[tuple[float, int, float]] = []  # the server's collector: (at, gen, took)
    gc_start = [0.0]

    def gc_pass(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        elif info["generation"] == 2 or time.perf_counter() - gc_start[0] > 0.005:
            now = time.perf_counter()
            gc_passes.append((round(now - t0, 3), info["generation"],
                              round((now - gc_start[0]) * 1000, 1)))  # fmt: skip

    gc.callbacks.append(gc_pass)
    link.send, journal.on_commit = timed_send, commit
    batches = journal.batches
    profiler = cProfile.Profile() if PROFILE else None
    if profiler is not None:
        profiler.enable()
        profiling(pids, True)
    # in flight only, as a server holds its requests: 10,000 finished tasks kept to the end
    # were a third of what the server's full collector pass walked
    tasks: set[asyncio.Task[None]] = set()
    c_fleet = sum(cpu_s(pid) for pid in pids)
    c_server = time.process_time()
    t0 = time.perf_counter()  # (the timeline's origin too)
    print(f"commands start {time.time():.3f}", file=sys.stderr, flush=True)
    probing = asyncio.create_task(db_probe(url, t0, len(ids) / rate))
    for k, device_id in enumerate(ids):
        await asyncio.sleep(max(0.0, t0 + k / rate - time.perf_counter()))
        task = asyncio.create_task(one(device_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*tasks)
    cmd_cpu = sum(cpu_s(pid) for pid in pids) - c_fleet + time.process_time() - c_server
    rate = round(len(ids) / (time.perf_counter() - t0), 1)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{PROFILE}/server-commands.prof")
        profiling(pids, False)
    del link.send
    gc.callbacks.remove(gc_pass)
    live = gc.get_objects()  # what a full pass of the server's would walk now
    tracked, kinds = len(live), Counter(type(o).__name__ for o in live).most_common(8)
    del live
    t = time.perf_counter()
    gc.collect()
    full_pass = {
        "tracked": tracked,
        "ms": round((time.perf_counter() - t) * 1000, 1),
        "most": kinds,
    }
    journal.on_commit = observe
    return {"sent": len(ids), "failed": failed, "rate_per_s": rate,
            "cpu_ms_each": round(cmd_cpu / len(ids) * 1000, 3), **percentiles(lat),
            "answer": percentiles(answered), "server_commit": percentiles(commits),
            "server_commits": journal.batches - batches,
            "slow": timeline(slow, long_commits), "server_gc_at_gen_ms": gc_passes,
            "server_full_pass_after": full_pass, "db_probe": await probing}  # fmt: skip


async def scale_out(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from switchgear.core.model import Device, DeviceEvent
    from switchgear.links import twinwire as tw
    from switchgear.links.twinsession import SessionPool
    from switchgear.runtime import Runtime
    from switchgear.settings import Settings

    n, out = args.devices, {}
    settings = Settings(database_url=url, speed=1, link=RUN.link, fleet="external",
                        secret_key="bench-secret-key-of-at-least-32-bytes",
                        command_timeout_s=30, log_level="warning")  # fmt: skip
    rt = await Runtime.start(settings)
    assert rt.fleet_link is not None
    procs: list[subprocess.Popen[bytes]] = []
    tag = secrets.token_hex(3).upper()
    devices: list[Device] = []
    try:
        account = await rt.auth.create_account("fleet@example.com", "Fleet", "a long password")
        t0 = time.perf_counter()
        rows = [Device(0, account.id, f"PC-FS{tag}{i:06d}-001", "power-controller-v10", "wh",
                       rt.clock.now()) for i in range(n)]  # fmt: skip
        devices = await rt.add_devices(rows)
        out["register_s"] = round(time.perf_counter() - t0, 1)
        ids = [d.id for d in devices]
        server_rss = rss_kib(os.getpid())

        # 1. sessions: births on the broker (a watcher of `+/online`), then the server's view
        births: set[str] = set()
        wanted = {tw.online_topic(d) for d in devices}
        born: list[float] = []

        def birth(topic: str, payload: bytes) -> None:
            if payload == b"true" and topic in wanted:
                births.add(topic)
                if len(births) == n and not born:
                    born.append(time.perf_counter() - t0)

        watcher = SessionPool(*RUN.broker).session(f"sgbench-watch-{tag}")
        await watcher.subscribe("+/online")
        watcher.start(birth, lambda _u: None)
        await until(lambda: watcher.ready, 30, "watcher")
        t0 = time.perf_counter()
        procs = [fleet_proc(url, f"{i}/{args.processes}") for i in range(args.processes)]

        def all_online() -> bool:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a fleet process exited")
            return all(rt.engine.shadow(i).online for i in ids)

        await until(all_online, 300, "every device online")
        out["online_s"] = round(time.perf_counter() - t0, 1)
        await until(lambda: bool(born), 30, "every birth")
        out["connect_s"] = round(born[0], 1)
        await watcher.close()
        pids = [p.pid for p in procs]
        rss = [rss_kib(pid) for pid in pids]
        out["fleet_rss_mib"] = [round(r / 1024, 1) for r in rss]
        out["fleet_rss_kib_per_device"] = round(sum(rss) / n, 1)
        out["fleet_connect_cpu_s"] = round(sum(cpu_s(pid) for pid in pids), 1)
        out["server_rss_mib"] = round(server_rss / 1024, 1)

        await asyncio.sleep(5)  # the connect's status answers settle
        if args.mode == "commands":  # the round trip alone (issue #22's latency work)
            out["commands"] = await commands(rt, account.id, ids, pids, args.rate, url)
            return out

        if args.mode == "ffr":  # FFR alone: its commands, no idle phase, no baselines
            out["commands"] = await commands(rt, account.id, ids, pids, args.rate, url)
            await asyncio.sleep(2)
            out.update(await ffr_burst(rt, account.id, devices, pids, args.processes, url))
            return out

        # 2. idle
        c_fleet = sum(cpu_s(pid) for pid in pids)
        c_server = time.process_time()
        heard = 0

        def count(_ev: DeviceEvent) -> None:
            nonlocal heard
            heard += 1

        rt.fleet_link.attach(count)
        await asyncio.sleep(args.idle_s)
        fleet_idle = (sum(cpu_s(pid) for pid in pids) - c_fleet) / args.idle_s
        server_idle = (time.process_time() - c_server) / args.idle_s
        out["idle_fleet_core_pct"] = round(fleet_idle * 100, 2)
        out["idle_server_core_pct"] = round(server_idle * 100, 2)
        out["idle_reports"] = heard

        # 3. command round trip: FFR on for every controller, one command each
        out["commands"] = await commands(rt, account.id, ids, pids, args.rate, url)
        await asyncio.sleep(2)

        # 4. FFR: grid step -> every relay status a row in PostgreSQL
        out.update(await ffr_burst(rt, account.id, devices, pids, args.processes, url))
        per_report = out["ffr"]["cpu_s_fleet_and_server"] / n
        cadence = per_report * n / 900  # one `update` a device every 15 minutes
        out["idle_with_cadence_core_pct"] = round((fleet_idle + server_idle + cadence) * 100, 2)
        out["cpu_ms_per_report"] = round(per_report * 1000, 3)
    finally:
        for p in procs:  # Ctrl-C: each fleet says `online=false` and disconnects cleanly
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        await rt.stop()
        if devices:  # no retained `online` left behind on the shared broker
            cleaner = SessionPool(*RUN.broker).session(f"sgbench-clean-{tag}")
            cleaner.start(lambda _t, _p: None, lambda _u: None)
            with contextlib.suppress(TimeoutError):
                await until(lambda: cleaner.ready, 30, "cleaner")
                for k, d in enumerate(devices):
                    if k % 500 == 0:  # within the session's in-flight bound
                        await until(lambda: cleaner.in_flight < 500, 60, "retained cleared")
                    cleaner.put(tw.online_topic(d), b"", True)
                await until(lambda: cleaner.in_flight == 0, 60, "retained cleared")
            await cleaner.close()
    return out


async def ffr_burst(rt: Any, account_id: int, devices: list[Any], pids: list[int],
                    processes: int, url: str) -> dict[str, Any]:  # fmt: skip
    """The grid steps to 59.6 Hz: wall time until every `relay/ffr` status is a row in
    PostgreSQL, the relays' instants, the CPU of fleets and server, the messages the server
    parsed on device topics and the events they carried."""
    from switchgear.core.model import DeviceEvent
    from switchgear.links import twinwire as tw

    n = len(devices)
    conn = await asyncpg.connect(url)
    # the step's rows only, by the key's range: a count over the whole table 50 times a
    # second (the benchmark's first way) cost PostgreSQL 5-10 ms a time in the burst
    since = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM statuses")
    sql = ("SELECT count(*), min(ts), max(ts) FROM statuses "
           "WHERE seq > $1 AND kind = 'relay' AND reason = 'ffr'")  # fmt: skip
    landed = asyncio.Event()  # the server's journal committed: count again
    parsed, events = 0, 0
    parse = tw.parse_events

    # each message's shape (its events' kinds and reasons) counted by a tuple, named after
    # the burst: naming each in it cost the server 10 %; keeping the events, its collector
    shapes: Counter[tuple[tuple[Any, str], ...]] = Counter()

    arrived: list[float] = []  # when the server parsed each device message (s after the step)
    committed: list[tuple[float, int, float]] = []  # each group commit: end, rows, took (s)

    def counted(device_id: int, payload: bytes) -> list[DeviceEvent]:
        nonlocal parsed
        parsed += 1
        arrived.append(time.perf_counter() - t_step)
        evs = parse(device_id, payload)
        shapes[tuple([(e.kind, e.reason) for e in evs])] += 1
        return evs

    def heard(_ev: DeviceEvent) -> None:
        nonlocal events
        events += 1

    observe = rt.journal.on_commit

    def commit(size: int, took: float) -> None:
        committed.append((time.perf_counter() - t_step, size, took))
        landed.set()
        if observe is not None:
            observe(size, took)

    tw.parse_events = counted  # type: ignore[assignment]
    rt.fleet_link.attach(heard)
    rt.journal.on_commit = commit
    c_fleet = sum(cpu_s(pid) for pid in pids)
    c_server = time.process_time()
    c_broker = cpu_s(RUN.broker_pid) if RUN.broker_pid else 0.0
    c_pg = postgres_cpu_s()
    batches = rt.journal.batches
    profiler = cProfile.Profile() if PROFILE else None
    if profiler is not None:
        profiler.enable()
        profiling(pids, True)
    step_v = rt.clock.now()
    t_step = time.perf_counter()
    stepping = asyncio.create_task(rt.set_grid(account_id, 59.6, None))
    stepped: list[float] = []
    stepping.add_done_callback(lambda _t: stepped.append(time.perf_counter() - t_step))
    rows_now = (0, None, None)
    while rows_now[0] < n:  # counted after each commit of the server's (rows land only so)
        if time.perf_counter() - t_step > 120:
            raise TimeoutError(f"FFR: {rows_now[0]} of {n} relay statuses durable")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(landed.wait(), 0.25)
        landed.clear()
        counted_at = time.perf_counter()  # the last commit ended before this
        rows_now = tuple(await conn.fetchrow(sql, since))
    durable_s = counted_at - t_step
    commits = rt.journal.batches - batches
    broker_cpu = cpu_s(RUN.broker_pid) - c_broker if RUN.broker_pid else None
    pg_cpu = postgres_cpu_s() - c_pg
    rt.journal.on_commit = observe
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{PROFILE}/server-ffr.prof")
        profiling(pids, False)
    await stepping
    set_grid_s = stepped[0]
    await asyncio.sleep(1)
    fleet_cpu = sum(cpu_s(pid) for pid in pids) - c_fleet
    server_cpu = time.process_time() - c_server
    ffr_cpu = fleet_cpu + server_cpu
    tw.parse_events = parse  # type: ignore[assignment]
    shard = {d.id: tw.shard_of(d, processes) for d in devices}
    by_shard: dict[int, list[float]] = {}
    for row in await conn.fetch(sql.replace("count(*), min(ts), max(ts)", "device_id, ts"), since):
        by_shard.setdefault(shard[row[0]], []).append(row[1])
    within = max(max(ts) - min(ts) for ts in by_shard.values())
    await conn.close()
    physics = FFR["periods"] / 60
    first, last = rows_now[1], rows_now[2]
    return {"ffr": {"controllers": n, "durable_ms": round(durable_s * 1000),
                    "set_grid_call_ms": round(set_grid_s * 1000),
                    "instant_spread_ms": round((last - first) * 1000, 3),
                    "instant_spread_in_a_process_ms": round(within * 1000, 3),
                    "first_instant_after_step_ms": round((first - step_v) * 1000, 1),
                    "physics_ms": round(physics * 1000, 1),
                    "cpu_s_fleet_and_server": round(ffr_cpu, 2),
                    "cpu_ms_a_controller": round(ffr_cpu / n * 1000, 3),
                    "fleet_cpu_ms_a_controller": round(fleet_cpu / n * 1000, 3),
                    "server_cpu_ms_a_controller": round(server_cpu / n * 1000, 3),
                    "server_device_messages_parsed": parsed,
                    "server_takes_reports": rt.fleet_link.mode,
                    "server_events_heard": events,
                    "server_commits_until_durable": commits,
                    "broker_cpu_s_until_durable": broker_cpu and round(broker_cpu, 2),
                    "postgres_cpu_s_until_durable": round(pg_cpu, 2),
                    "server_heard_ms": spread(arrived),
                    "server_commits_ms": [(round(at * 1000), rows, round(took * 1000))
                                          for at, rows, took in committed[:40]],
                    "server_message_shapes": {
                        " ".join(f"{kind.value}/{reason}" for kind, reason in shape): count
                        for shape, count in shapes.items()
                    }}}  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    name = f"sg_bench22_fs_{secrets.token_hex(3)}"
    await admin(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        return await scale_out(args, url)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ffr_inproc(n: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.ffr", "--controllers", str(n)]
    text = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(text[text.index("{") :]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "mode", nargs="?", choices=("all", "sessions", "commands", "ffr"), default="all"
    )
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--impl", choices=("lean", "aiomqtt"), default="lean")
    ap.add_argument("--no-aiomqtt", action="store_true", help="skip the aiomqtt sessions run")
    ap.add_argument("--link", help="mqtt://host:port of a broker to use (default: its own)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--broker-nagle", action="store_true",
                    help="own broker without set_tcp_nodelay (Mosquitto's default)")  # fmt: skip
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a socket per session, and
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the broker inherits it
    with tempfile.TemporaryDirectory() as tmp:
        broker = None
        if args.link is None:
            broker, port = own_broker(Path(tmp), not args.broker_nagle)
            args.link = f"mqtt://127.0.0.1:{port}"
            RUN.broker_pid = broker.pid
        args.own_broker = broker is not None
        from switchgear.links.mqttclient import broker_address

        RUN.broker, RUN.link = broker_address(args.link), args.link
        try:
            run(args)
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(30)


def run(args: argparse.Namespace) -> None:
    if args.mode == "sessions":
        print(json.dumps(arun(sessions(args.devices, args.impl, min(args.idle_s, 20)))))
        return
    from switchgear import gctune

    load0 = os.getloadavg()
    if args.mode == "ffr":  # the FFR burst alone (its commands turn FFR on), no baselines
        with gctune.tuned():
            got = arun(main_async(args))
        print(
            json.dumps(
                {
                    "devices": args.devices,
                    "load_before": [round(x, 1) for x in load0],
                    "load_after": [round(x, 1) for x in os.getloadavg()],
                    "cpu_ms_a_command": got["commands"]["cpu_ms_each"],
                    **got["ffr"],
                }
            )
        )
        return
    if args.mode == "commands":  # the round trip and its echo baseline, nothing else
        echo_b = arun(echo(min(args.devices, 5000), args.rate))
        echo_a = arun(echo_aiomqtt(min(args.devices, 5000), args.rate))
        with gctune.tuned():
            got = arun(main_async(args))
        cmd = {**got["commands"], "connect_s": got["connect_s"],
               "fleet_connect_cpu_s": got["fleet_connect_cpu_s"]}  # fmt: skip
        load1 = [round(x, 1) for x in os.getloadavg()]
        print(json.dumps({"devices": args.devices, "rate": args.rate, "load_before":
                          [round(x, 1) for x in load0], "load_after": load1,
                          "echo_lean": echo_b, "echo_aiomqtt": echo_a,
                          "commands": cmd}))  # fmt: skip
        return
    base = {"lean": run_sessions(args.devices, "lean", 20)}
    if not args.no_aiomqtt:
        base["aiomqtt"] = run_sessions(args.devices, "aiomqtt", 20)
    base["echo"] = arun(echo(min(args.devices, 5000), args.rate))
    base["echo_aiomqtt"] = arun(echo_aiomqtt(min(args.devices, 5000), args.rate))
    base["ffr_inproc"] = ffr_inproc(args.devices)
    with gctune.tuned():  # as a server holds its collector
        got = arun(main_async(args))
    result = {"devices": args.devices, "processes": args.processes, "rate": args.rate,
              "broker": "its own Mosquitto" if args.own_broker else args.link,
              "load_before": [round(x, 1) for x in load0],
              "load_after": [round(x, 1) for x in os.getloadavg()],
              "baseline": base, "scale_out": got}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


def report(r: dict[str, Any]) -> None:
    b, s, n = r["baseline"], r["scale_out"], r["devices"]
    lean, echo_b, ffr_b = b["lean"], b["echo"], b["ffr_inproc"]
    cmd, ffr = s["commands"], s["ffr"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average {r['load_before'][0]} before, "
          f"{r['load_after'][0]} after")  # fmt: skip
    print(f"{n:,} power controllers, {r['processes']} fleet processes, commands at "
          f"{r['rate']:.0f}/s; broker: {r['broker']}")  # fmt: skip
    print("| measure | figure | target | baseline | ratio |")
    print("|---|---|---|---|---|")
    print(f"| {n:,} sessions connected (every birth on the broker) | {s['connect_s']} s "
          f"| < 60 s | bare lean sessions {lean['connect_s']} s | "
          f"{s['connect_s'] / lean['connect_s']:.1f} |")  # fmt: skip
    print(f"| ... and the server sees every device online (its status asked) | {s['online_s']} s "
          f"| | | |")  # fmt: skip
    if "aiomqtt" in b:
        a = b["aiomqtt"]
        print(f"| bare sessions, one aiomqtt client each | {a['connect_s']} s, "
              f"{a['rss_kib_per_session']} KiB, idle {a['idle_core_pct']} % | | lean "
              f"{lean['connect_s']} s, {lean['rss_kib_per_session']} KiB, idle "
              f"{lean['idle_core_pct']} % | "
              f"{a['connect_s'] / lean['connect_s']:.1f} |")  # fmt: skip
    print(f"| fleet RSS a device (processes: {s['fleet_rss_mib']} MiB) | "
          f"{s['fleet_rss_kib_per_device']} KiB | < 100 KiB | bare lean session "
          f"{lean['rss_kib_per_session']} KiB | |")  # fmt: skip
    print(f"| command round trip at {cmd['rate_per_s']}/s ({cmd['failed']} failed) | p50 "
          f"{cmd['p50_ms']} ms, p99 **{cmd['p99_ms']} ms** | p99 < 25 ms | lean echo p50 "
          f"{echo_b['p50_ms']} ms, p99 {echo_b['p99_ms']} ms (aiomqtt echo p50 "
          f"{b['echo_aiomqtt']['p50_ms']} ms, p99 {b['echo_aiomqtt']['p99_ms']} ms) | "
          f"{cmd['p99_ms'] / max(echo_b['p99_ms'], 0.01):.1f} |")  # fmt: skip
    probe = cmd["db_probe"]
    print(f"| ... beside it, a one-row PostgreSQL commit alone, 50/s (a command waits for two "
          f"in turn) | p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms, max "
          f"{probe['max_ms']} ms; over 25 ms: {len(probe['over_slow_at_s_took_ms'])} "
          f"| | | |")  # fmt: skip
    print(f"| CPU a command, server + fleet (all 2 cores: {2000 / cmd['cpu_ms_each']:,.0f} "
          f"commands/s) | {cmd['cpu_ms_each']} ms | | | |")  # fmt: skip
    print(
        f"| CPU an FFR report, server + fleet (all 2 cores: {n:,} in "
        f"{ffr['cpu_s_fleet_and_server'] / 2:.2f} s) | {s['cpu_ms_per_report']} ms | | | |"
    )
    print(f"| FFR: step → {n:,} relay statuses durable in PostgreSQL | **{ffr['durable_ms']} ms** "
          f"| < 2,000 ms | in-process, step → last report {ffr_b['step_to_last_report_ms']} ms "
          f"| {ffr['durable_ms'] / ffr_b['step_to_last_report_ms']:.1f} |")  # fmt: skip
    print(f"| FFR relay instants: spread in a fleet process, across processes, first after "
          f"the step (physics {ffr['physics_ms']} ms) | {ffr['instant_spread_in_a_process_ms']} "
          f"ms, {ffr['instant_spread_ms']} ms, {ffr['first_instant_after_step_ms']} ms | exact "
          f"| in-process first/last {ffr_b['step_to_first_open_ms']}/"
          f"{ffr_b['step_to_last_open_ms']} ms | |")  # fmt: skip
    print(f"| idle: fleet processes / server, {s['idle_reports']} reports heard | "
          f"{s['idle_fleet_core_pct']} % / {s['idle_server_core_pct']} % of a core | | bare "
          f"lean sessions {lean['idle_core_pct']} % | |")  # fmt: skip
    print(f"| idle with the 15-min cadence ({s['cpu_ms_per_report']} ms CPU a report, "
          f"{n / 900:.1f} reports/s) | **{s['idle_with_cadence_core_pct']} %** of a core | "
          f"< 10 % | | |")  # fmt: skip
    print(f"registration of {n:,} on the server: {s['register_s']} s; server RSS with them "
          f"(twins elsewhere): {s['server_rss_mib']} MiB; fleet CPU to connect: "
          f"{s['fleet_connect_cpu_s']} s; FFR CPU (fleet + server): "
          f"{ffr['cpu_s_fleet_and_server']} s, and until durable the broker's "
          f"{ffr['broker_cpu_s_until_durable']} s, PostgreSQL's "
          f"{ffr['postgres_cpu_s_until_durable']} s; set_grid call "
          f"{ffr['set_grid_call_ms']} ms")  # fmt: skip


if __name__ == "__main__":
    main()
