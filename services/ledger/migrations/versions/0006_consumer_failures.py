"""Failures of a consumed record on a healthy system, counted across restarts (egis_common.failures)."""

from alembic import op

from egis_common.failures import create_failures_table, drop_failures_table

revision = "ledger_0006"
down_revision = "ledger_0005"
branch_labels = None
depends_on = None
SCHEMA = "ledger"


def upgrade() -> None:
    create_failures_table(op, SCHEMA)


def downgrade() -> None:
    drop_failures_table(op, SCHEMA)
