"""Server logging as `serve --log-level debug` sets it up: what a debugging operator sees."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device
from switchgear.logs import QUIET, SILENT_AT_DEBUG, configure_logging
from switchgear.runtime import Runtime
from switchgear.settings import Settings


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging rewires the root logger: put back what pytest had."""
    root = logging.getLogger()
    names = (*QUIET, *SILENT_AT_DEBUG, "uvicorn")
    kept = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names}
    try:
        yield
    finally:
        root.handlers[:], root.level = kept[0], kept[1]
        for name, level in kept[2].items():
            logging.getLogger(name).setLevel(level)


async def test_debug_logging_writes_no_stored_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restored_logging: None
) -> None:
    """At DEBUG the SQLite driver logged every statement with its values: meter PINs,
    Push3 meter passwords and password hashes went to the log as they were stored."""
    configure_logging("debug")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", speed=0,
                        secret_key="k" * 32)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        await rt.auth.issue(account.id, KIND_NATIVE, None)
        await rt.add_device(Device(0, account.id, "1700000001", "D101", "meter",
                                   rt.clock.now(), attrs={"devpass": "918273"}))  # fmt: skip
        found = await rt.store.account_by_email("a@example.com")
        assert found is not None
        password_hash = found[1]
    err = capsys.readouterr().err
    assert "DEBUG switchgear.auth.service" in err  # debug lines are written...
    assert "918273" not in err  # ...but no stored secret
    assert password_hash not in err
