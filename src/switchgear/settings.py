"""One Settings object, from SWITCHGEAR_* environment variables and command-line flags."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("debug", "info", "warning", "error")


class Settings(BaseSettings):
    """Everything the server needs to start, validated once."""

    model_config = SettingsConfigDict(env_prefix="SWITCHGEAR_", extra="ignore")

    database_url: str = "sqlite:///./switchgear.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    speed: float = Field(default=1.0, ge=0.0, le=100_000.0, allow_inf_nan=False)
    link: str = "memory"
    # where simulated devices run: "in-process", or "external" (`switchgear fleet`
    # processes on the --link broker, sharing the clock through the database)
    fleet: Literal["in-process", "external"] = "in-process"
    secret_key: str | None = Field(default=None, min_length=32)
    command_timeout_s: float = Field(default=10.0, gt=0)
    # simulated twins booted before a start answers; the rest boot in the background
    boot_inline_twins: int = Field(default=5_000, ge=0)
    public_url: str | None = None
    demo: bool = False
    # `demo --fleet-size N`: N simulated devices in all (0: the small demo fleet alone)
    demo_fleet_size: int = Field(default=0, ge=0, le=10_000_000)
    credentials_file: str | None = None
    log_level: str = "info"  # debug, info, warning or error (any case)
    log_format: Literal["text", "json"] = "text"  # stderr lines: text, or one JSON object each
    # smart-MAIC meters refuse requests faster than their version allows (off for benchmarks)
    meterhttp_rate_limit: bool = True
    # multisocket API gateway: calls per subscription key per day; None = no quota
    # a device registered through a vendor API (POST /v1/devices) gets a simulated twin
    simulate_new_devices: bool = True
    # a Push3 gateway runs each command after 5-100% of this many seconds (0: at once)
    push3_gateway_delay_s: float = Field(default=1.5, ge=0, le=60)
    # an idle Push3 /sub stream gets a keep-alive (a blank line) this often, in wall seconds
    push3_keepalive_s: float = Field(default=20.0, gt=0, le=3600)
    multisocket_daily_quota: int | None = Field(default=None, ge=1)
    # TLS: serve HTTPS (and WSS) with this certificate chain and private key (PEM files)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    # reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For names the client
    # that sign-in throttling counts by; empty: the TCP peer is the client
    trusted_proxies: list[str] = Field(default_factory=list)
    # threads hashing passwords (argon2), off the event loop; default: half the cores
    password_workers: int | None = Field(default=None, ge=1, le=64)
    # how often (wall seconds) a server looks for accounts/credentials the CLI added
    credentials_refresh_s: float = Field(default=2.0, gt=0, le=3600)
    # the --link broker's login (when the URL has none) and TLS files (mqtts:// links);
    # links/broker.py. The password never reaches a log line.
    mqtt_username: str | None = None
    mqtt_password: str | None = Field(default=None, repr=False)
    mqtt_ca: str | None = None  # CA bundle (PEM) to trust instead of the system's
    mqtt_cert: str | None = None  # client certificate (PEM), with mqtt_key
    mqtt_key: str | None = None

    # real meters may be polled only at addresses in these networks (checked after DNS,
    # at registration and before every poll); cloud metadata addresses are always refused.
    # Default: the private LAN ranges; loopback and link-local are outside.
    meter_networks: list[str] = Field(
        default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
    )
    # at most this many polled (real) meters per account
    meter_max_per_account: int = Field(default=50, ge=0)
    # device registrations (every face) per account per hour, refused or not
    registrations_per_hour: int = Field(default=30, ge=1)

    # transport limits (serve/demo under uvicorn): open HTTP connections (one more: 503)
    max_connections: int = Field(default=1000, ge=1)
    max_connections_per_client: int = Field(default=100, ge=1)  # per client address
    # a request's headers must arrive within this many seconds and bytes (408 / 431) ...
    header_timeout_s: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    # ... and its body within this many seconds after them (408)
    body_timeout_s: float = Field(default=30.0, gt=0)
    # an idle keep-alive connection is closed after this many seconds
    keep_alive_s: float = Field(default=5.0, gt=0)
    # open streams (SSE, Push3 /sub and /ws) per credential, and in all, counted by each
    # worker process (one more: 429)
    streams_per_credential: int = Field(default=16, ge=1)
    max_streams: int = Field(default=1000, ge=1)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @field_validator("trusted_proxies", "meter_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry.strip(), strict=False)  # ValueError names the bad one
        return value

    @property
    def base_url(self) -> str:
        """The server's public base URL, for links it writes: `public_url` when set, else
        the scheme, host and port it listens on (never a client's `Host` header)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_certfile else "http"
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}"
