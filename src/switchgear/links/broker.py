"""Where the MQTT broker is and how to log in: `mqtt://` or `mqtts://` (TLS), user, password.

The link URL carries host, port and optionally `user:password@`; the settings add what
a URL cannot say well (SWITCHGEAR_MQTT_USERNAME / _PASSWORD, kept out of `ps`; a CA
file, a client certificate and key for TLS). A Broker never shows its password: its
text and repr give `mqtts://user@host:port`.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from switchgear.errors import InvalidInput

if TYPE_CHECKING:
    from switchgear.settings import Settings

DEFAULT_PORT = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class Broker:
    """One broker: its address, the login (if any) and TLS (system CAs unless `ca_file`)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (system CAs unless `ca_file`; a client certificate if given)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def is_broker_link(url: str) -> bool:
    """Whether a link setting names a broker (`mqtt://...` or `mqtts://...`)."""
    return url.startswith(("mqtt://", "mqtts://"))


def broker(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> Broker:
    """The broker of a link URL; a login in the URL wins over the one given apart.

    InvalidInput for what is not `mqtt[s]://[user[:password]@]host[:port]`, and for TLS
    files given to a plain `mqtt://` link (they would be silently unused).
    """
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORT or not parts.hostname:
        raise InvalidInput("the link is not mqtt://host:port or mqtts://host:port", field="link")
    try:
        port = parts.port or DEFAULT_PORT[parts.scheme]
    except ValueError:
        raise InvalidInput("the link has a bad port", field="link") from None
    tls = parts.scheme == "mqtts"
    if not tls and (ca_file or cert_file or key_file):
        raise InvalidInput(
            "SWITCHGEAR_MQTT_CA/_CERT/_KEY need a TLS link: mqtts://host:port", field="link"
        )
    for setting, path in (("CA", ca_file), ("CERT", cert_file), ("KEY", key_file)):
        if path and not os.path.isfile(path):
            raise InvalidInput(f"SWITCHGEAR_MQTT_{setting}: no file {path}", field="link")
    if bool(cert_file) != bool(key_file):
        raise InvalidInput(
            "a client certificate needs its key: set SWITCHGEAR_MQTT_CERT and _KEY", field="link"
        )
    if parts.username is not None:
        username = unquote(parts.username)
        password = None if parts.password is None else unquote(parts.password)
    return Broker(
        parts.hostname, port, username or None, password, tls, ca_file, cert_file, key_file
    )


def from_settings(settings: Settings) -> Broker:
    """The broker of `settings.link` with the settings' login and TLS files."""
    return broker(
        settings.link,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        ca_file=settings.mqtt_ca,
        cert_file=settings.mqtt_cert,
        key_file=settings.mqtt_key,
    )
