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
    # an idle Push3 /sub stream gets a keep-alive (a blank line) this often, in wall seconds
    push3_keepalive_s: float = Field(default=20.0, gt=0, le=3600)
    multisocket_daily_quota: int | None = Field(default=None, ge=1)
    # TLS: serve HTTPS (and WSS) with this certificate chain and private key (PEM files)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

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
