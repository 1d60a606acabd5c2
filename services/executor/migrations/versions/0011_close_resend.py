"""A close the venue certainly did not execute is sent again: `resend_due`, with when (`resend_at`), how many
times it was sent (`send_attempts`) and when first (`first_sent_at`, from which its time to be sent again runs).

Only a close waits to be sent again, and only an order already recorded (client order id, quantity,
reservation) can be; the partial indexes serve the periodic job that sends them and the in-flight gauges.
"""

import sqlalchemy as sa
from alembic import op

revision = "executor_0011"
down_revision = "executor_0010"
branch_labels = None
depends_on = None
SCHEMA = "executor"
STATUSES = ("'received', 'preflight_requested', 'reserved', 'submitting', 'filled', 'rejected', "
            "'pending_reconciliation', 'skipped'")
ORDER_PLACED = "'submitting', 'filled', 'pending_reconciliation'"
ATTEMPT = "client_order_id IS NOT NULL AND order_qty IS NOT NULL AND position_id IS NOT NULL"
IN_FLIGHT = "'preflight_requested', 'reserved', 'submitting', 'pending_reconciliation'"


def _replace_check(name: str, condition: str) -> None:
    op.drop_constraint(name, "intents", type_="check", schema=SCHEMA)
    op.create_check_constraint(name, "intents", condition, schema=SCHEMA)


def _in_flight_index(statuses: str) -> None:
    op.drop_index("intents_in_flight_by_age", "intents", schema=SCHEMA)
    op.create_index("intents_in_flight_by_age", "intents", ["status", "updated_at"], schema=SCHEMA,
                    postgresql_where=f"status IN ({statuses})")


def upgrade() -> None:
    op.add_column("intents", sa.Column("send_attempts", sa.Integer, nullable=False, server_default="0"),
                  schema=SCHEMA)
    op.add_column("intents", sa.Column("first_sent_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    op.add_column("intents", sa.Column("resend_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    # Orders sent before this revision were sent once, when they were last updated at the latest.
    op.execute(f"UPDATE {SCHEMA}.intents SET send_attempts = 1, first_sent_at = updated_at "
               "WHERE client_order_id IS NOT NULL")
    _replace_check("intents_status_known", f"status IN ({STATUSES}, 'resend_due')")
    _replace_check("intents_attempt_recorded", f"status NOT IN ({ORDER_PLACED}, 'resend_due') OR ({ATTEMPT})")
    op.create_check_constraint("intents_send_attempts_not_negative", "intents", "send_attempts >= 0", schema=SCHEMA)
    op.create_check_constraint("intents_sent_when_recorded", "intents",
                               "(send_attempts = 0) = (first_sent_at IS NULL)", schema=SCHEMA)
    op.create_check_constraint(
        "intents_resend_due_is_a_close", "intents",
        "(status = 'resend_due') = (resend_at IS NOT NULL) "
        "AND (status <> 'resend_due' OR (kind = 'close' AND send_attempts >= 1))", schema=SCHEMA)
    _in_flight_index(f"{IN_FLIGHT}, 'resend_due'")
    op.create_index("intents_resend_due", "intents", ["resend_at"], schema=SCHEMA,
                    postgresql_where="status = 'resend_due'")


def downgrade() -> None:
    op.execute(f"UPDATE {SCHEMA}.intents SET status = 'pending_reconciliation' WHERE status = 'resend_due'")
    op.drop_index("intents_resend_due", "intents", schema=SCHEMA)
    _in_flight_index(IN_FLIGHT)
    for name in ("intents_resend_due_is_a_close", "intents_sent_when_recorded", "intents_send_attempts_not_negative"):
        op.drop_constraint(name, "intents", type_="check", schema=SCHEMA)
    _replace_check("intents_attempt_recorded", f"status NOT IN ({ORDER_PLACED}) OR ({ATTEMPT})")
    _replace_check("intents_status_known", f"status IN ({STATUSES})")
    for column in ("resend_at", "first_sent_at", "send_attempts"):
        op.drop_column("intents", column, schema=SCHEMA)
