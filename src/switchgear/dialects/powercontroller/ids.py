"""The API's string device ids and addresses, derived from the registry (nothing stored)."""

from __future__ import annotations

import base64
import hashlib

from switchgear.core.model import Device
from switchgear.errors import DeviceNotFound
from switchgear.runtime import Runtime


def device_id(device: Device) -> str:
    """An 11-character id like "6ItNKFLm_mS", stable for the device."""
    digest = hashlib.sha256(f"pc-id:{device.id}:{device.serial}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def address(device: Device) -> str:
    """The controller's 24-character modem address."""
    return hashlib.sha256(f"pc-address:{device.serial}".encode()).hexdigest()[:24]


class Index:
    """API id -> registry id: built once from the registry, then kept by the engine's
    registrations (a new device costs one entry, not a rebuild over the fleet). A device
    stored again under a new serial has a new API id: the old one is gone at once."""

    def __init__(self) -> None:
        self._ids: dict[str, int] | None = None
        self._api_id_of: dict[int, str] = {}  # registry id -> its API id now

    def lookup(self, rt: Runtime, account_id: int, api_id: str) -> Device:
        """The account's device with this API id; anything else is 'not found'."""
        if self._ids is None:
            self._ids = {}
            for d in rt.engine.all_devices():
                self._add(d)
            rt.engine.watch(self._add)
        found = self._ids.get(api_id)
        if found is None:
            raise DeviceNotFound("device not found")
        return rt.engine.device(account_id, found)

    def _add(self, device: Device) -> None:
        ids = self._ids
        assert ids is not None
        api_id = device_id(device)
        old = self._api_id_of.get(device.id)
        if old is not None and old != api_id and ids.get(old) == device.id:
            del ids[old]
        ids[api_id] = device.id
        self._api_id_of[device.id] = api_id


def index(rt: Runtime) -> Index:
    found = rt.extensions.get("powercontroller.ids")
    if not isinstance(found, Index):
        found = rt.extensions["powercontroller.ids"] = Index()
    return found
