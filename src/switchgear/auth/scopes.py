"""Credential kinds (which face a credential belongs to) and scope names."""

from __future__ import annotations

KIND_NATIVE = "native"
KIND_SMARTPLUG_CLIENT = "smartplug.client"
KIND_SMARTPLUG_ACCESS = "smartplug.access"
KIND_SMARTPLUG_REFRESH = "smartplug.refresh"
KIND_MULTISOCKET_KEY = "multisocket.key"
KIND_MULTISOCKET_ID_TOKEN = "multisocket.id_token"
KIND_POWERCONTROLLER_TOKEN = "powercontroller.token"
KIND_PUSH3_KEY = "push3.key"
KIND_PUSH3_GATEWAY_KEY = "push3.gateway_key"
KIND_METERHTTP_PIN = "meterhttp.pin"

SCOPE_PLUG_READ = "plug.read"
SCOPE_PLUG_WRITE = "plug.write"
