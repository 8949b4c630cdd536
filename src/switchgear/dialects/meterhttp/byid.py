"""Simulated meters by devid, across accounts, kept by the engine's registrations."""

from __future__ import annotations

from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import Device, Family
from switchgear.runtime import Runtime


class Meters:
    """devid -> meter: built once from the registry, then kept by `Engine.watch` (a new
    device anywhere costs one check, not a rebuild over the fleet). A device stored again
    replaces its entry, under its new devid if that changed: the old one is gone at once."""

    def __init__(self) -> None:
        self._by_devid: dict[str, Device] = {}
        self._devid_of: dict[int, str] = {}  # registry id -> the devid it is indexed under

    def get(self, devid: str) -> Device | None:
        return self._by_devid.get(devid)

    def take(self, d: Device) -> None:
        """Index the device if it is a simulated meter with a PIN (again, if stored anew)."""
        old = self._devid_of.pop(d.id, None)
        if old is not None and self._by_devid.get(old, d).id == d.id:
            del self._by_devid[old]
        if d.simulated and catalog_model(d.model).family is Family.METER and "devpass" in d.attrs:
            self._by_devid[d.serial] = d
            self._devid_of[d.id] = d.serial


def meters(rt: Runtime) -> Meters:
    """The runtime's meter index, built and set watching on first use."""
    index = rt.extensions.get("meterhttp.by_devid")
    if not isinstance(index, Meters):
        index = rt.extensions["meterhttp.by_devid"] = Meters()
        for d in rt.engine.all_devices():
            index.take(d)
        rt.engine.watch(index.take)
    return index
