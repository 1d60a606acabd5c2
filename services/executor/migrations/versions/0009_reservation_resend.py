"""When an intent last asked the ledger for its reservation: one still `preflight_requested` long after that
asks again (its ReserveBudget or the answer was lost), and not again every round of the periodic job.

The partial index on the intents in an intermediate state, by state and age, serves that job, the
stale-submission sweep and the in-flight gauges; it replaces the index on `submitting` alone (0006)."""

import sqlalchemy as sa
from alembic import op

revision = "executor_0009"
down_revision = "executor_0008"
branch_labels = None
depends_on = None
SCHEMA = "executor"
IN_FLIGHT = "status IN ('preflight_requested', 'reserved', 'submitting', 'pending_reconciliation')"


def upgrade() -> None:
    op.add_column("intents", sa.Column("reservation_sent_at", sa.DateTime(timezone=True), nullable=True),
                  schema=SCHEMA)
    op.create_index("intents_in_flight_by_age", "intents", ["status", "updated_at"], schema=SCHEMA,
                    postgresql_where=IN_FLIGHT)
    op.drop_index("intents_submitting_by_age", "intents", schema=SCHEMA)


def downgrade() -> None:
    op.create_index("intents_submitting_by_age", "intents", ["updated_at"], schema=SCHEMA,
                    postgresql_where="status = 'submitting'")
    op.drop_index("intents_in_flight_by_age", "intents", schema=SCHEMA)
    op.drop_column("intents", "reservation_sent_at", schema=SCHEMA)
