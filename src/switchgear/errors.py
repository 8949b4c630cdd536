"""The one exception tree; every face maps it to its own wire format in one table.

SwitchgearError
├── NotFound                 (a thing does not exist *for this account*)
│   ├── AccountNotFound
│   ├── DeviceNotFound       (missing, or owned by another account: same answer)
│   ├── CommandNotFound
│   ├── CredentialNotFound
│   └── ImportNotFound       (a bulk import job: unknown, or another account's)
├── AuthError
│   ├── NotAuthenticated     (no credential presented)
│   ├── InvalidCredential    (unknown, malformed, tampered, wrong kind)
│   ├── CredentialExpired
│   ├── CredentialRevoked
│   ├── BadPassword
│   └── Forbidden            (authenticated, but lacks a scope)
├── InvalidInput             (a request field is wrong; names the field)
│   ├── InvalidCommand
│   └── NothingMatched       (a well-formed selection names no device: nothing to act on)
│       └── NothingEnrolled  (every device named was refused; `refused` says why each)
├── Conflict                 (duplicate serial/email, clock not manual, ...)
│   ├── MqttIdTaken          (the store holds a device under one of these MQTT ids)
│   └── MetersCapped         (the account would poll more meters than the server allows)
├── RateLimited
└── DeviceError
    ├── DeviceOffline        (the device is not connected)
    ├── CommandTimedOut      (the device did not answer in time)
    └── CommandRejected      (the device refused the command)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


class SwitchgearError(Exception):
    """Base of every error switchgear raises on purpose."""

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        self.message = message or (self.__class__.__doc__ or self.__class__.__name__)
        self.field = field


class NotFound(SwitchgearError):
    """Not found."""


class AccountNotFound(NotFound):
    """Account not found."""


class DeviceNotFound(NotFound):
    """Device not found."""


class CommandNotFound(NotFound):
    """Command not found."""


class CredentialNotFound(NotFound):
    """Credential not found."""


class ImportNotFound(NotFound):
    """Import not found."""


class AuthError(SwitchgearError):
    """Authentication failed."""


class NotAuthenticated(AuthError):
    """No credential was presented."""


class InvalidCredential(AuthError):
    """The credential is not valid here."""


class CredentialExpired(AuthError):
    """The credential has expired."""


class CredentialRevoked(AuthError):
    """The credential has been revoked."""


class BadPassword(AuthError):
    """Invalid username and password combination."""


class Forbidden(AuthError):
    """The credential lacks the scope this request needs."""


class InvalidInput(SwitchgearError):
    """The request is invalid."""


class InvalidCommand(InvalidInput):
    """The command is invalid for this device."""


class NothingMatched(InvalidInput):
    """No device matched."""


class NothingEnrolled(NothingMatched):
    """No device named could be enrolled."""

    def __init__(self, message: str, refused: list[dict[str, object]], *, field: str) -> None:
        super().__init__(message, field=field)
        self.refused = refused  # [{"device_id", "reason"}], as a group lists its refusals


class TooLarge(InvalidInput):
    """The answer would exceed what one request may return; the request must narrow it."""


class Conflict(SwitchgearError):
    """The request conflicts with the current state."""


class MqttIdTaken(Conflict):
    """This MQTT id is taken."""

    def __init__(self, taken: Iterable[str] = (), message: str = "") -> None:
        super().__init__(message, field="mqtt_id")
        self.taken = frozenset(taken)  # those of the new devices' ids stored already


class MetersCapped(Conflict):
    """The account would poll more meters than this server allows."""

    def __init__(self, most: int) -> None:
        super().__init__(f"the account polls {most} meters, the most this server allows",
                         field="url")  # fmt: skip
        self.most = most


class RateLimited(SwitchgearError):
    """Too many requests."""

    def __init__(self, message: str = "", *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeviceError(SwitchgearError):
    """The device could not carry out the command."""

    def __init__(self, message: str = "", *, command_id: str | None = None) -> None:
        super().__init__(message)
        self.command_id = command_id


class DeviceOffline(DeviceError):
    """The device is offline."""


class CommandTimedOut(DeviceError):
    """The device did not answer in time."""


class CommandRejected(DeviceError):
    """The device rejected the command."""


def lookup(table: Mapping[type[SwitchgearError], T], err: SwitchgearError) -> T | None:
    """A face's entry for `err`: the first of its classes (most specific first) in `table`."""
    for cls in type(err).__mro__:
        if cls in table:
            return table[cls]
    return None
