"""Command ids keep their format (32 hex digits) and come in creation order."""

from __future__ import annotations

import re

from switchgear.core.engine import new_command_id


def test_command_ids_are_32_hex_digits_and_unique() -> None:
    ids = [new_command_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_command_ids_lead_with_their_creation_time_so_an_index_takes_them_in_order() -> None:
    ids = [new_command_id() for _ in range(10_000)]
    prefixes = [i[:16] for i in ids]
    assert prefixes == sorted(prefixes)
    assert ids[0] < ids[-1]
