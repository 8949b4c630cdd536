"""Database URLs: plain sqlite/postgresql URLs become their async-driver forms."""

from __future__ import annotations


def async_url(url: str) -> str:
    """`sqlite:///x.db` → `sqlite+aiosqlite:///x.db`; `postgresql://` → `postgresql+asyncpg://`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported database: {scheme!r} (use sqlite or postgresql)")
