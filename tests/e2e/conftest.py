"""Fixtures of the end-to-end tests: the session's PostgreSQL database, emptied per test."""

from __future__ import annotations

import asyncio

import pytest

from tests.storage.conftest import empty_schema, pg_database  # noqa: F401 (a fixture)


@pytest.fixture
def pg(pg_database: str) -> str:  # noqa: F811 (the fixture imported above)
    """The session's PostgreSQL database, emptied for this test."""
    asyncio.run(empty_schema(pg_database))
    return pg_database
