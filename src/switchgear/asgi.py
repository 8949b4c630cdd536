"""`switchgear.asgi:app` for any ASGI server; settings come from SWITCHGEAR_* variables."""

from __future__ import annotations

from switchgear.app import create_app

app = create_app()
