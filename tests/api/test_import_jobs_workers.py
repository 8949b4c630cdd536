"""An import job posted on one API worker reads back on another (issue #26)."""

from __future__ import annotations

import time
from typing import Any

from switchgear import importjobs
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.importjobs import Jobs
from tests.api.test_import_jobs import _finished, _post
from tests.api.test_mqtt_devices import until
from tests.api.test_workers import deployment, url  # noqa: F401 (a fixture)
from tests.conftest import World
from tests.storage.conftest import pg_database  # noqa: F401 (a fixture)

ROWS = 40  # (asked to be a job: each device also boots on the broker)


def _csv(prefix: str, n: int) -> str:
    good = "".join(f"{prefix}-{i:05d},SHPLG-1,plug {i},\n" for i in range(n - 2))
    return "serial,model,name,tags\n" + good + f"{prefix}-X,NOPE-1,,\n,SHPLG-1,,\n"


async def test_a_job_posted_on_a_reads_back_on_b_and_only_for_its_account(url: str) -> None:  # noqa: F811
    async with deployment(url) as d:
        r = await d.a.client.post("/api/v1/devices:import", content=_csv("SPG-WJ", ROWS).encode(),
                                  headers={"Content-Type": "text/csv", "Prefer": "respond-async",
                                           "Authorization": f"Bearer {d.native}"})  # fmt: skip
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        at_once = await d.b.get(location, d.native)  # readable on B as soon as A answered
        assert at_once.status_code == 200, at_once.text
        seen: list[dict[str, Any]] = [at_once.json()]

        async def on_b(states: tuple[str, ...]) -> bool:
            got = await d.b.get(location, d.native)
            if got.status_code == 200:
                seen.append(got.json())
            return got.status_code == 200 and got.json()["state"] in states

        await until(lambda: on_b(("done", "failed")), seconds=30)
        first, last = seen[0], seen[-1]
        assert first["id"] == last["id"] == r.json()["id"] and first["rows"] == ROWS
        assert last["state"] == "done" and last["error"] is None
        assert (last["validated"], last["imported"]) == (ROWS, ROWS - 2)
        assert [x["line"] for x in last["refused"]] == [ROWS, ROWS + 1]
        assert last == (await d.a.get(location, d.native)).json()  # as A has it
        # progress read on B never goes backwards
        counts = [(x["validated"], x["imported"]) for x in seen]
        assert counts == sorted(counts)
        # another account reads it on B as a job that does not exist
        other = await d.a.rt.auth.create_account("o@example.com", "O", "correct horse O")
        _, theirs = await d.a.rt.auth.issue(other.id, KIND_NATIVE, 3600.0)
        refused = await d.b.get(location, theirs)
        nowhere = await d.b.get("/api/v1/imports/0123456789abcdef01234567", d.native)
        assert refused.status_code == nowhere.status_code == 404
        assert refused.json() == nowhere.json()


async def test_a_shared_job_is_in_the_store_as_it_finished_and_expires_there(
    world: World,
) -> None:
    jobs = Jobs.of(world.rt)
    jobs.shared = True  # as on a runtime on the cluster
    r = await _post(world, _csv("SPG-SJ", 20), {"Content-Type": "text/csv",
                                                "Prefer": "respond-async"})  # fmt: skip
    done = await _finished(world, r.headers["location"])
    await world.rt.journal.flush()
    record = await world.rt.store.meta(importjobs.key(done["id"]))
    account = world.plug_a.account_id
    now = time.time()
    job = importjobs.from_record(record, account, now)
    assert job is not None and (job.state, job.rows, job.report.imported) == ("done", 20, 18)
    assert [x.line for x in job.report.refused] == [20, 21]
    assert importjobs.from_record(record, account + 1, now) is None  # not another's
    assert importjobs.from_record(record, account, now + importjobs.KEEP_S + 1) is None
    # a job whose worker stopped without a word expires from its last write
    stuck = {**record, "state": "importing", "finished_at": None}
    assert importjobs.from_record(stuck, account, now + importjobs.KEEP_S - 1) is not None
    assert importjobs.from_record(stuck, account, now + importjobs.KEEP_S + 1) is None


async def test_a_single_process_keeps_its_jobs_out_of_the_store(world: World) -> None:
    assert not Jobs.of(world.rt).shared  # the embedded server: no worker to tell
    r = await _post(world, _csv("SPG-EJ", 20), {"Content-Type": "text/csv",
                                                "Prefer": "respond-async"})  # fmt: skip
    done = await _finished(world, r.headers["location"])
    await world.rt.journal.flush()
    assert done["imported"] == 18
    assert await world.rt.store.meta(importjobs.key(done["id"])) is None
