"""Alembic migrations of the switchgear schema."""
