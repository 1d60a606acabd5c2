"""The router's durable dedup: one row per distinct signal, with what was decided for it."""

import sqlalchemy as sa
from alembic import op

revision = "signal_router_0002"
down_revision = "signal_router_0001"
branch_labels = None
depends_on = None
SCHEMA = "signal_router"
# Every skip reason but duplicate_signal: a duplicate is the signal that found its row taken.
_REASONS = "('unknown_signal_key', 'bot_deleted', 'bot_paused', 'stale_signal')"


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("dedup_key", sa.Text, primary_key=True),
        sa.Column("signal_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("signal_key", sa.Text, nullable=False),
        sa.Column("bot_id", sa.Uuid, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("intent_id", sa.Uuid, nullable=True, unique=True),
        sa.Column("skip_reason", sa.Text, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("outcome IN ('routed', 'skipped')", name="signals_outcome"),
        sa.CheckConstraint("(outcome = 'routed') = (intent_id IS NOT NULL)", name="signals_routed_has_intent"),
        sa.CheckConstraint("(outcome = 'skipped') = (skip_reason IS NOT NULL)", name="signals_skipped_has_reason"),
        sa.CheckConstraint(f"skip_reason IS NULL OR skip_reason IN {_REASONS}", name="signals_skip_reason"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("signals", schema=SCHEMA)
