"""switchgear: a self-hosted control plane for switched electrical loads."""

__version__ = "0.1.0"
