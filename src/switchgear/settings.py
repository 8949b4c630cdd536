"""One Settings object, from SWITCHGEAR_* environment variables and command-line flags."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server needs to start, validated once."""

    model_config = SettingsConfigDict(env_prefix="SWITCHGEAR_", extra="ignore")

    database_url: str = "sqlite:///./switchgear.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    speed: float = Field(default=1.0, ge=0.0, le=100_000.0)
    link: str = "memory"
    secret_key: str | None = Field(default=None, min_length=32)
    command_timeout_s: float = Field(default=10.0, gt=0)
    public_url: str | None = None
    demo: bool = False
    credentials_file: str | None = None
    log_level: str = "info"
    # smart-MAIC meters refuse requests faster than their version allows (off for benchmarks)
    meterhttp_rate_limit: bool = True
    # multisocket API gateway: calls per subscription key per day; None = no quota
    # a device registered through a vendor API (POST /v1/devices) gets a simulated twin
    simulate_new_devices: bool = True
    # a Push3 gateway runs each command after 5-100% of this many seconds (0: at once)
    push3_gateway_delay_s: float = Field(default=1.5, ge=0, le=60)
    multisocket_daily_quota: int | None = Field(default=None, ge=1)
    # TLS: serve HTTPS (and WSS) with this certificate chain and private key (PEM files)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
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
    # open streams (SSE, Push3 /sub and /ws) per credential, and in all (one more: 429)
    streams_per_credential: int = Field(default=16, ge=1)
    max_streams: int = Field(default=1000, ge=1)

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
