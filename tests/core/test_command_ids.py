"""Command ids keep their format (32 hex digits) and come in creation order."""

from __future__ import annotations

import re
import time

import pytest

from switchgear.core.engine import new_command_id


def test_command_ids_are_32_hex_digits_and_unique() -> None:
    ids = [new_command_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_command_ids_lead_with_their_creation_time_so_an_index_takes_them_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [new_command_id() for _ in range(1_000)]
    assert ids == sorted(ids)
    monkeypatch.setattr(time, "time_ns", lambda: 1)  # the wall clock stepped back
    later = [new_command_id() for _ in range(10)]
    assert later == sorted(later) and later[0] > ids[-1]
