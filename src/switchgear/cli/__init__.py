"""The `switchgear` command."""
