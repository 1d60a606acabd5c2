"""Failures of a consumed record on a healthy system, counted across restarts (egis_common.failures)."""

from alembic import op

from egis_common.failures import create_failures_table, drop_failures_table

revision = "signal_router_0004"
down_revision = "signal_router_0003"
branch_labels = None
depends_on = None
SCHEMA = "signal_router"


def upgrade() -> None:
    create_failures_table(op, SCHEMA)


def downgrade() -> None:
    drop_failures_table(op, SCHEMA)
