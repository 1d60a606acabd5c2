"""Orders whose outcome is unknown (the executor's OrderPendingReconciliation), per bot, until the ledger settles
their intent's reservation: a found fill, a release, or the order's own fill or failure."""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0011"
down_revision = "ledger_0010"
branch_labels = None
depends_on = None
SCHEMA = "ledger"


def upgrade() -> None:
    op.create_table(
        "pending_reconciliations",
        # One row per intent: a redelivered or repeated OrderPendingReconciliation is the same row.
        sa.Column("intent_id", sa.Uuid, primary_key=True),
        sa.Column("bot_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.bots.bot_id"), nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("intent", sa.Text, nullable=False),
        sa.Column("position_id", sa.Uuid),
        sa.Column("client_order_id", sa.Text, nullable=False),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("exchange_account", sa.Text, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=False),  # the event's occurred_at
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.Column("settled_by", sa.Text),  # the message type that settled the reservation
        sa.Column("settled_detail", sa.Text),
        sa.CheckConstraint("intent IN ('open', 'close')", name="pending_reconciliations_intent_known"),
        sa.CheckConstraint(
            "(settled_at IS NULL) = (settled_by IS NULL)", name="pending_reconciliations_settled_says_how"
        ),
        sa.CheckConstraint(
            "settled_by IS NULL OR settled_by IN ('ApplyFoundFill', 'ReleaseReservation', 'OrderFilled', "
            "'OrderRejected')",
            name="pending_reconciliations_settled_by_known",
        ),
        schema=SCHEMA,
    )
    # The console lists a bot's unsettled ones; settled rows are history and stay out of this index.
    op.create_index(
        "pending_reconciliations_unsettled_by_bot",
        "pending_reconciliations",
        ["bot_id", "pending_since"],
        schema=SCHEMA,
        postgresql_where=sa.text("settled_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("pending_reconciliations", schema=SCHEMA)
