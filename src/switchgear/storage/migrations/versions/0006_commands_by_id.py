"""Commands: no index on `device_id` (nothing reads by it); SQLite keeps them by id.

Every command written paid a b-tree insert into `ix_commands_device_id`, which no query
uses (a command is read by its id), and SQLite's rowid table kept its key in a second
b-tree beside the rows. The index goes, and SQLite's table is rebuilt WITHOUT ROWID: the
rows sit in the key's b-tree, in id order — time order, since ids lead with the clock —
so a command is written once, at the right edge, and read in one descent. PostgreSQL
keeps its heap and primary key.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = "id, device_id, account_id, name, params, state, created_at, updated_at, result, error"


def _rebuild(options: str) -> None:
    """Rebuild SQLite's `commands` with these table options, its rows intact."""
    op.execute(
        "CREATE TABLE commands_rebuilt (id VARCHAR(64) NOT NULL, device_id INTEGER NOT NULL, "
        "account_id INTEGER NOT NULL, name VARCHAR(64) NOT NULL, params JSON NOT NULL, "
        "state VARCHAR(16) NOT NULL, created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, "
        f"result JSON, error TEXT, PRIMARY KEY (id)){options}"
    )
    op.execute(f"INSERT INTO commands_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM commands")
    op.execute("DROP TABLE commands")  # its index goes with it
    op.execute("ALTER TABLE commands_rebuilt RENAME TO commands")


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild(" WITHOUT ROWID")
    else:
        op.drop_index("ix_commands_device_id", table_name="commands")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild("")
    op.create_index("ix_commands_device_id", "commands", ["device_id"])
