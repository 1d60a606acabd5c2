"""The signal_router schema's outbox and inbox."""

from alembic import op

from egis_common.outbox import create_messaging_tables, drop_messaging_tables

revision = "signal_router_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "signal_router"


def upgrade() -> None:
    create_messaging_tables(op, SCHEMA)


def downgrade() -> None:
    drop_messaging_tables(op, SCHEMA)
