"""The signal journal: what became of each webhook post (the router's SignalJournaled), for its owner to read."""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0010"
down_revision = "ledger_0009"
branch_labels = None
depends_on = None
SCHEMA = "ledger"


def upgrade() -> None:
    op.create_table(
        "signal_journal",
        # The journal message's id: a redelivered entry is the same row.
        sa.Column("entry_id", sa.Uuid, primary_key=True),
        sa.Column("signal_id", sa.Uuid),  # none for a post refused before it named a signal
        sa.Column("bot_id", sa.Uuid),  # none for a post that named no known bot
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("intent_id", sa.Uuid),
        sa.Column("intent", sa.Text),
        sa.Column("action", sa.Text),
        sa.Column("symbol", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "outcome IN ('routed', 'skipped', 'duplicate', 'rejected')", name="signal_journal_outcome_known"
        ),
        sa.CheckConstraint("(outcome = 'routed') = (intent_id IS NOT NULL)", name="signal_journal_routed_has_intent"),
        sa.CheckConstraint("outcome = 'routed' OR reason IS NOT NULL", name="signal_journal_reason_unless_routed"),
        sa.CheckConstraint(
            "outcome = 'rejected' OR signal_id IS NOT NULL", name="signal_journal_signal_unless_rejected"
        ),
        schema=SCHEMA,
    )
    op.create_index("signal_journal_by_signal", "signal_journal", ["signal_id"], schema=SCHEMA)
    op.create_index("signal_journal_by_bot", "signal_journal", ["bot_id", sa.text("received_at DESC")], schema=SCHEMA)
    op.create_index("signal_journal_by_age", "signal_journal", ["recorded_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("signal_journal", schema=SCHEMA)
