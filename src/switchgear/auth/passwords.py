"""Password hashing with argon2id (argon2-cffi), off the event loop in a bounded pool."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from switchgear.errors import RateLimited

_hasher = PasswordHasher()
# Verified against when the email is unknown, so timing does not tell which emails exist.
_DUMMY = _hasher.hash("switchgear-dummy-password")
T = TypeVar("T")
WORKER_NICE = 19  # hashing threads run at the lowest CPU priority
MAX_WAITING = 64  # hashes queued for the pool beyond this are refused (429), not queued


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if `password` matches; never raises on a mismatch or a bad hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_dummy(password: str) -> bool:
    """Spend the time of one verification and fail."""
    verify_password(_DUMMY, password)
    return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _lower_priority() -> None:
    """Run this worker (and the lane threads argon2 starts from it) at a lower CPU
    priority, so the event loop wins the cores while a flood is hashed (Linux: nice is
    per thread and inherited by threads it starts)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)


def default_workers() -> int:
    """Half the cores (at least one): the other half keeps serving every tenant."""
    return max(1, (os.cpu_count() or 2) // 2)


class HashPool:
    """argon2 in worker threads (argon2-cffi releases the GIL), so a sign-in flood costs
    at most `workers` cores and never blocks the event loop; a full queue is refused."""

    def __init__(
        self,
        workers: int | None = None,
        max_waiting: int = MAX_WAITING,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.workers = workers or default_workers()
        self._pool = ThreadPoolExecutor(
            self.workers, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._max = max_waiting
        self._pending = 0
        self._hasher = hasher or _hasher
        self._dummy = _DUMMY if hasher is None else hasher.hash("switchgear-dummy-password")

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        if self._pending >= self._max:
            raise RateLimited("too many sign-ins in progress; try again later", retry_after=1.0)
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._pending -= 1

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if `password` matches; with no hash (an unknown e-mail) the same work, False."""
        if password_hash is None:
            await self._run(self._verify, self._dummy, password)
            return False
        return await self._run(self._verify, password_hash, password)

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
