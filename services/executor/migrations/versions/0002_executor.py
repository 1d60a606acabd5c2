"""Intents and their state machine, pending reconciliations, the stop orders placed for intents.

Every invariant of `executor.domain` is a constraint here too.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "executor_0002"
down_revision = "executor_0001"
branch_labels = None
depends_on = None
SCHEMA = "executor"
STATUSES = ("('received', 'preflight_requested', 'reserved', 'submitting', 'filled', 'rejected', "
            "'pending_reconciliation', 'skipped')")
ORDER_PLACED = "('submitting', 'filled', 'pending_reconciliation')"


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _money(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Numeric, nullable=nullable)


def _create_intents() -> None:
    op.create_table(
        "intents",
        sa.Column("intent_id", sa.Uuid, primary_key=True),  # one row per intent, whatever is redelivered
        sa.Column("signal_id", sa.Uuid, nullable=False),
        sa.Column("bot_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=True),  # a close learns its side from the ledger's answer
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("exchange_account", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        *(_money(name) for name in ("requested_size_usd", "take_profit_price", "stop_loss_price")),
        sa.Column("position_id", sa.Uuid, nullable=True),
        sa.Column("client_order_id", sa.Text, nullable=True, unique=True),
        _money("order_qty"),
        sa.Column("skip_reason", sa.Text, nullable=True),
        sa.Column("exchange_code", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("exchange_order_id", sa.Text, nullable=True),
        *(_money(name) for name in ("executed_qty", "avg_price", "fee_usd", "realised_pnl_usd")),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"), _now("updated_at"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="intents_status_known"),
        sa.CheckConstraint("kind IN ('open', 'close')", name="intents_kind_known"),
        sa.CheckConstraint("side IN ('long', 'short')", name="intents_side_known"),
        sa.CheckConstraint("exchange IN ('paper', 'binance_usdm')", name="intents_exchange_known"),
        sa.CheckConstraint("requested_size_usd IS NULL OR requested_size_usd > 0", name="intents_size_positive"),
        sa.CheckConstraint("kind <> 'open' OR requested_size_usd IS NOT NULL OR status = 'skipped'",
                           name="intents_open_has_size"),
        # Binance: at most 36 of [.A-Za-z0-9:/_-]; Egis ids never use ':' or '/'.
        sa.CheckConstraint("client_order_id ~ '^[.A-Za-z0-9_-]{1,36}$'", name="intents_client_order_id_format"),
        # No exchange call without a durable attempt: its client order id, quantity and reservation.
        sa.CheckConstraint(
            f"status NOT IN {ORDER_PLACED} OR (client_order_id IS NOT NULL AND order_qty IS NOT NULL "
            "AND position_id IS NOT NULL)", name="intents_attempt_recorded"),
        sa.CheckConstraint(
            "status <> 'filled' OR (exchange_order_id IS NOT NULL AND executed_qty > 0 AND avg_price > 0 "
            "AND fee_usd >= 0 AND filled_at IS NOT NULL)", name="intents_filled_has_fill"),
        sa.CheckConstraint("status <> 'rejected' OR (exchange_code IS NOT NULL AND position_id IS NOT NULL)",
                           name="intents_rejected_has_code"),
        sa.CheckConstraint("status <> 'skipped' OR skip_reason IS NOT NULL", name="intents_skipped_has_reason"),
        schema=SCHEMA,
    )
    op.create_index("intents_by_bot", "intents", ["bot_id", "created_at"], schema=SCHEMA)


def _create_pending_and_stops() -> None:
    op.create_table(
        "pending_reconciliations",
        sa.Column("intent_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.intents.intent_id"), primary_key=True),
        sa.Column("client_order_id", sa.Text, nullable=False, unique=True),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("intent", JSONB, nullable=False),
        sa.Column("exchange_response", JSONB, nullable=True),
        _now("created_at"),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.CheckConstraint("(resolved_at IS NULL) = (resolution IS NULL)", name="pending_resolution_complete"),
        schema=SCHEMA,
    )
    op.create_index("pending_unresolved", "pending_reconciliations", ["created_at"], schema=SCHEMA,
                    postgresql_where=sa.text("resolved_at IS NULL"))
    op.create_table(
        "stop_orders",
        sa.Column("client_algo_id", sa.Text, primary_key=True),
        sa.Column("intent_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.intents.intent_id"), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=True),  # a close learns its side from the ledger's answer
        sa.Column("trigger_price", sa.Numeric, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("algo_id", sa.Text, nullable=True),
        sa.Column("exchange_code", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        _now("created_at"), _now("updated_at"),
        sa.UniqueConstraint("intent_id", "purpose", name="stop_orders_one_per_purpose"),
        sa.CheckConstraint("purpose IN ('take_profit', 'stop_loss')", name="stop_orders_purpose_known"),
        sa.CheckConstraint("kind IN ('TAKE_PROFIT_MARKET', 'STOP_MARKET')", name="stop_orders_kind_known"),
        sa.CheckConstraint("side IN ('BUY', 'SELL')", name="stop_orders_side_known"),
        sa.CheckConstraint("trigger_price > 0", name="stop_orders_trigger_positive"),
        sa.CheckConstraint("status IN ('placing', 'placed', 'rejected', 'unknown')", name="stop_orders_status_known"),
        sa.CheckConstraint("status <> 'placed' OR algo_id IS NOT NULL", name="stop_orders_placed_has_id"),
        schema=SCHEMA,
    )


def upgrade() -> None:
    _create_intents()
    _create_pending_and_stops()


def downgrade() -> None:
    for table in ("stop_orders", "pending_reconciliations", "intents"):
        op.drop_table(table, schema=SCHEMA)
