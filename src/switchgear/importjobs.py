"""Import jobs: a large bulk import runs in the background and is read back for progress.

A job belongs to the account that posted it; any other account is told it does not exist
(CONTRACTS §3). A job runs in the process that accepted it and is forgotten KEEP_S after
it finishes (or when an account holds more than KEEP_PER_ACCOUNT of them), so a job is a
progress report, not a record: the devices it added are the record.

With several API workers (a runtime on the cluster) the worker running a job also writes
it to the store under `import:job:<id>` (journal meta) at each change of state and at most
every PUBLISH_S of progress; a worker that does not hold a job reads that record, with the
same owner check and expiry (wall-clock times: workers share no monotonic clock). A record
past its expiry, and a dropped job's null row, is deleted by the servers' meta sweep
(`metasweep.py`, `record_ends`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from switchgear import onboarding
from switchgear.core.model import Json
from switchgear.errors import ImportNotFound, SwitchgearError
from switchgear.importrows import Parsed
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

KEEP_S = 3600.0  # a finished job can be read this long (wall clock)
KEEP_PER_ACCOUNT = 50  # the most jobs an account has on record; the oldest finished go first
PUBLISH_S = 0.5  # the most often a shared job's progress is written to the store
PREFIX = "import:job:"  # + id: a shared job's record in the store's meta
JOB_ID = re.compile(r"[0-9a-f]{24}")  # as start() makes them: secrets.token_hex(12)


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for the import before it (one runs at a time)
    VALIDATING = "validating"
    IMPORTING = "importing"
    DONE = "done"
    FAILED = "failed"  # refused whole (the hourly allowance) or broken: `error` says why


@dataclass
class Job:
    """One import's progress: rows checked, devices added, rows refused so far."""

    id: str
    account_id: int
    rows: int
    state: JobState = JobState.QUEUED
    validated: int = 0
    report: onboarding.Report = field(default_factory=onboarding.Report)
    error: str | None = None
    finished_at: float | None = None  # time.monotonic()

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED)


def key(job_id: str) -> str:
    """The store's meta key of a job."""
    return f"{PREFIX}{job_id}"


def record_ends(key: str, record: Json) -> float:
    """When a job's record may go (wall clock), as `from_record` reads it: KEEP_S after the
    job finished or, unfinished, after its last write; a dropped job's null row at once."""
    if not isinstance(record, dict):
        return -math.inf
    return float(record.get("finished_at") or record.get("updated_at") or 0.0) + KEEP_S


def to_record(job: Job, now: float) -> Json:
    """The job as the store keeps it (`now`: wall-clock seconds)."""
    report = job.report
    return {
        "id": job.id, "account_id": job.account_id, "state": job.state.value,
        "rows": job.rows, "validated": job.validated, "imported": report.imported,
        "unchanged": report.unchanged, "refused": [[r.line, r.reason] for r in report.refused],
        "error": job.error, "updated_at": now, "finished_at": now if job.finished else None,
    }  # fmt: skip


def from_record(record: Json, account_id: int, now: float) -> Job | None:
    """The account's job from its record; None for another account's or an expired one.

    A finished job expires KEEP_S after it finished, an unfinished one KEEP_S after its
    last write (its worker stopped without a word)."""
    if not isinstance(record, dict) or record.get("account_id") != account_id:
        return None
    if (record.get("finished_at") or record.get("updated_at") or 0.0) < now - KEEP_S:
        return None
    report = onboarding.Report(
        rows=record["rows"], imported=record["imported"], unchanged=record["unchanged"],
        refused=[onboarding.Refusal(line, reason) for line, reason in record["refused"]],
    )  # fmt: skip
    return Job(record["id"], account_id, record["rows"], JobState(record["state"]),
               record["validated"], report, record["error"])  # fmt: skip


class Jobs:
    """The process's import jobs; one import runs at a time, the others queue.

    `shared`: other workers read these jobs, so they are written to the store too."""

    def __init__(self, shared: bool = False) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._turn = asyncio.Lock()
        self.shared = shared

    @classmethod
    def of(cls, rt: Runtime) -> Jobs:
        jobs = rt.extensions.get("import_jobs")
        if not isinstance(jobs, Jobs):
            jobs = rt.extensions["import_jobs"] = cls(shared=rt.cluster is not None)
        return jobs

    def get(self, account_id: int, job_id: str) -> Job:
        """The account's job; ImportNotFound for an unknown one and another account's alike."""
        self._forget()
        job = self._jobs.get(job_id)
        if job is None or job.account_id != account_id:
            raise ImportNotFound("import not found")
        return job

    async def find(self, rt: Runtime, account_id: int, job_id: str) -> Job:
        """The account's job, this process's or (shared) another worker's from the store."""
        self._forget(rt)
        if job_id in self._jobs or not self.shared or not JOB_ID.fullmatch(job_id):
            return self.get(account_id, job_id)
        job = from_record(await rt.store.meta(key(job_id)), account_id, time.time())
        if job is None:
            raise ImportNotFound("import not found")
        return job

    async def start(
        self, rt: Runtime, account_id: int, rows: list[Parsed], line_offset: int
    ) -> Job:
        """Queue the import of these rows and return its job at once (shared: once every
        worker can read it, so the 202's Location never answers 404 on another)."""
        self._forget(rt)
        job = Job(secrets.token_hex(12), account_id, len(rows))
        self._jobs[job.id] = job
        self._trim(account_id, rt)
        if self.shared:
            self._publish(rt, job)
            await rt.journal.flush()
        rt.spawn(self._run(rt, job, rows, line_offset), f"import-{job.id}")
        return job

    async def run_now(
        self, rt: Runtime, account_id: int, rows: list[Parsed], line_offset: int
    ) -> onboarding.Report:
        """A small import, answered in the request (after any job under way)."""
        async with self._turn:
            plan = await onboarding.check(rt, account_id, rows, line_offset)
            return await onboarding.run(rt, account_id, plan)

    async def _run(self, rt: Runtime, job: Job, rows: list[Parsed], line_offset: int) -> None:
        last = time.monotonic()

        def progressed() -> None:  # written at most every PUBLISH_S
            nonlocal last
            if self.shared and time.monotonic() - last >= PUBLISH_S:
                last = time.monotonic()
                self._publish(rt, job)

        def checked(n: int) -> None:
            job.validated = n
            progressed()

        try:
            async with self._turn:
                job.state = JobState.VALIDATING
                self._publish(rt, job)
                plan = await onboarding.check(rt, job.account_id, rows, line_offset, checked)
                job.report = plan.report  # imported counts up in it as batches land
                job.state = JobState.IMPORTING
                self._publish(rt, job)
                await onboarding.run(rt, job.account_id, plan, lambda _n, _all: progressed())
                job.state = JobState.DONE
        except SwitchgearError as err:
            job.error, job.state = err.message, JobState.FAILED
        except asyncio.CancelledError:
            job.error, job.state = "the server stopped before the import finished", JobState.FAILED
            raise
        except Exception:
            log.exception("import %s failed", job.id)
            job.error, job.state = "the import failed on the server", JobState.FAILED
        finally:
            job.finished_at = time.monotonic()
            self._publish(rt, job)  # (a stopping runtime commits it as its journal stops)

    def _publish(self, rt: Runtime, job: Job) -> None:
        if self.shared:
            rt.journal.put_meta(key(job.id), to_record(job, time.time()))

    def _forget(self, rt: Runtime | None = None) -> None:
        cutoff = time.monotonic() - KEEP_S
        old = [j.id for j in self._jobs.values() if j.finished_at and j.finished_at < cutoff]
        for job_id in old:
            self._drop(job_id, rt)

    def _trim(self, account_id: int, rt: Runtime) -> None:
        mine = [j for j in self._jobs.values() if j.account_id == account_id]
        for job in [j for j in mine if j.finished][: max(0, len(mine) - KEEP_PER_ACCOUNT)]:
            self._drop(job.id, rt)

    def _drop(self, job_id: str, rt: Runtime | None) -> None:
        del self._jobs[job_id]
        if self.shared and rt is not None:  # the record goes too (an expired one reads as gone)
            rt.journal.put_meta(key(job_id), None)
