"""Accounts, credentials and ownership (tenancy) as domain rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from switchgear.core.model import Device
from switchgear.errors import DeviceNotFound


@dataclass(frozen=True, slots=True)
class Credential:
    """A stored credential: a token, key or client secret, kept as a hash of its secret.

    `kind` names the face and purpose ("native", "smartplug.access", ...); a credential of
    one kind is refused wherever another kind is expected.
    """

    id: str
    account_id: int
    kind: str
    secret_hash: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    scopes: tuple[str, ...] = ()
    desc: str = ""
    attrs: Mapping[str, str] = field(default_factory=dict)

    def valid_at(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def owned(device: Device | None, account_id: int) -> Device:
    """The device if `account_id` owns it; otherwise exactly the error of a missing device."""
    if device is None or device.account_id != account_id:
        raise DeviceNotFound("device not found")
    return device
