"""A confirmed reconcile-paper-positions waits for the executor's answer: a run may be `awaiting_executor`."""

from alembic import op

revision = "reconciler_0006"
down_revision = "reconciler_0005"
branch_labels = None
depends_on = None
SCHEMA = "reconciler"
TABLE = "repair_runs"
NAME = "repair_runs_status_known"


def upgrade() -> None:
    op.drop_constraint(NAME, TABLE, schema=SCHEMA, type_="check")
    op.create_check_constraint(NAME, TABLE, "status IN ('ok', 'refused', 'failed', 'awaiting_executor')",
                               schema=SCHEMA)


def downgrade() -> None:
    op.drop_constraint(NAME, TABLE, schema=SCHEMA, type_="check")
    op.create_check_constraint(NAME, TABLE, "status IN ('ok', 'refused', 'failed')", schema=SCHEMA)
