"""The election of a real device's records among workers: a message's plain copy pairs
with its shared copy in either order, also when the device repeats a payload."""

from __future__ import annotations

from switchgear.core.model import DeviceEvent, DeviceState, StatusKind
from switchgear.links.shellygroup import Election, Namer, message_record_id

T = "shellies/shellyplug-A1B2C3/relay/0/power"


def ev(power: float, ts: float = 100.0) -> DeviceEvent:
    return DeviceEvent(
        1, ts, StatusKind.UPDATE, "device", {"power": power}, DeviceState(1, ts, True)
    )


def test_records_are_written_by_the_worker_dealt_the_shared_copy_in_either_order() -> None:
    written: list[str] = []
    e = Election(lambda _ev, rid: written.append(rid))
    e.plain((T, b"1.00"), [(ev(1.0), "r1")])
    assert written == []  # not dealt (yet): nothing
    e.shared((T, b"1.00"))
    e.shared((T, b"2.00"))  # the shared copy first this time
    e.plain((T, b"2.00"), [(ev(2.0), "r2")])
    assert written == ["r1", "r2"]
    assert e.pending() == 0


def test_a_repeated_payload_pairs_with_its_own_copy_not_an_older_one() -> None:
    """Another worker's state request makes the device say the same thing twice: the first
    copy's shared half went to the other worker, so its records are not written here."""
    written: list[str] = []
    e = Election(lambda _ev, rid: written.append(rid))
    e.plain((T, b"0.00"), [(ev(0.0), "first")])  # dealt to the other worker
    e.plain((T, b"0.00"), [])  # the repeat: derives no record here
    e.shared((T, b"0.00"))
    assert written == []
    assert e.pending() == 0  # one entry per topic at most


def test_workers_name_a_record_alike_and_the_same_record_again_anew() -> None:
    a = message_record_id(T, b"1.00", 0, ev(1.0, 100.0))
    assert a == message_record_id(T, b"1.00", 0, ev(1.0, 101.0))  # another worker's now
    assert a != message_record_id(T, b"1.00", 1, ev(1.0, 100.0))
    on_a, on_b = Namer(), Namer()  # two workers hearing the same messages
    names_a = [on_a.name(T, b"1.00", 0, ev(1.0, 100.0 + i)) for i in range(3)]
    names_b = [on_b.name(T, b"1.00", 0, ev(1.0, 100.2 + i)) for i in range(3)]
    assert names_a == names_b and len(set(names_a)) == 3 and names_a[0] == a
