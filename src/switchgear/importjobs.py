"""Import jobs: a large bulk import runs in the background and is read back for progress.

A job belongs to the account that posted it; any other account is told it does not exist
(CONTRACTS §3). Jobs live in the process that accepted them and are forgotten KEEP_S
after they finish (or when an account holds more than KEEP_PER_ACCOUNT of them), so a
job is a progress report, not a record: the devices it added are the record.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from switchgear import onboarding
from switchgear.errors import ImportNotFound, SwitchgearError
from switchgear.importrows import Parsed
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

KEEP_S = 3600.0  # a finished job can be read this long (wall clock)
KEEP_PER_ACCOUNT = 50  # the most jobs an account has on record; the oldest finished go first


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


class Jobs:
    """The process's import jobs; one import runs at a time, the others queue."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._turn = asyncio.Lock()

    @classmethod
    def of(cls, rt: Runtime) -> Jobs:
        jobs = rt.extensions.get("import_jobs")
        if not isinstance(jobs, Jobs):
            jobs = rt.extensions["import_jobs"] = cls()
        return jobs

    def get(self, account_id: int, job_id: str) -> Job:
        """The account's job; ImportNotFound for an unknown one and another account's alike."""
        self._forget()
        job = self._jobs.get(job_id)
        if job is None or job.account_id != account_id:
            raise ImportNotFound("import not found")
        return job

    def start(self, rt: Runtime, account_id: int, rows: list[Parsed], line_offset: int) -> Job:
        """Queue the import of these rows and return its job at once."""
        self._forget()
        job = Job(secrets.token_hex(12), account_id, len(rows))
        self._jobs[job.id] = job
        self._trim(account_id)
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
        try:
            async with self._turn:
                job.state = JobState.VALIDATING

                def checked(n: int) -> None:
                    job.validated = n

                plan = await onboarding.check(rt, job.account_id, rows, line_offset, checked)
                job.report = plan.report  # imported counts up in it as batches land
                job.state = JobState.IMPORTING
                await onboarding.run(rt, job.account_id, plan)
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

    def _forget(self) -> None:
        cutoff = time.monotonic() - KEEP_S
        old = [j.id for j in self._jobs.values() if j.finished_at and j.finished_at < cutoff]
        for job_id in old:
            del self._jobs[job_id]

    def _trim(self, account_id: int) -> None:
        mine = [j for j in self._jobs.values() if j.account_id == account_id]
        for job in [j for j in mine if j.finished][: max(0, len(mine) - KEEP_PER_ACCOUNT)]:
            del self._jobs[job.id]
