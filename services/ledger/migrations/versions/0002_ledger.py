"""Bots, positions, preflight answers and API tokens, with the ledger's invariants as constraints."""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0002"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None
SCHEMA = "ledger"
ACTIVE = "('opening', 'open', 'closing')"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def _create_bots() -> None:
    op.create_table(
        "bots",
        sa.Column("bot_id", sa.Uuid, primary_key=True),
        sa.Column("owner_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("strategy", sa.Text, nullable=False),
        sa.Column("signal_key", sa.Text, nullable=False),
        sa.Column("webhook_secret_hash", sa.Text, nullable=False),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("exchange_account", sa.Text, nullable=False),
        sa.Column("initial_budget_usd", sa.Numeric, nullable=False),
        sa.Column("default_order_size_usd", sa.Numeric, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        *_timestamps(),
        sa.CheckConstraint("strategy IN ('signal_hook')", name="bots_strategy_known"),
        sa.CheckConstraint("exchange IN ('paper', 'binance_usdm')", name="bots_exchange_known"),
        sa.CheckConstraint("length(signal_key) BETWEEN 1 AND 128", name="bots_signal_key_length"),
        sa.CheckConstraint("initial_budget_usd >= 0", name="bots_budget_not_negative"),
        sa.CheckConstraint("default_order_size_usd > 0", name="bots_order_size_positive"),
        schema=SCHEMA,
    )
    # Unique among live Signal Hook bots only: a deleted bot's key can be reused.
    op.create_index(
        "bots_live_signal_key", "bots", ["signal_key"], unique=True, schema=SCHEMA,
        postgresql_where=sa.text("deleted_at IS NULL AND strategy = 'signal_hook'"),
    )
    op.create_index("bots_owner", "bots", ["owner_id"], schema=SCHEMA)


def _create_positions() -> None:
    op.create_table(
        "positions",
        sa.Column("position_id", sa.Uuid, primary_key=True),
        sa.Column("bot_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.bots.bot_id"), nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("exchange_account", sa.Text, nullable=False),
        sa.Column("requested_size_usd", sa.Numeric, nullable=False),
        sa.Column("size_usd", sa.Numeric, nullable=False, server_default="0"),
        sa.Column("executed_qty", sa.Numeric, nullable=False, server_default="0"),
        sa.Column("avg_entry_price", sa.Numeric, nullable=True),
        sa.Column("open_intent_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("open_exchange_order_id", sa.Text, nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_intent_id", sa.Uuid, nullable=True),
        sa.Column("close_exchange_order_id", sa.Text, nullable=True),
        sa.Column("close_price", sa.Numeric, nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("realised_pnl_usd", sa.Numeric, nullable=True),
        sa.Column("fee_usd", sa.Numeric, nullable=False, server_default="0"),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("tp_order_id", sa.Text, nullable=True),
        sa.Column("sl_order_id", sa.Text, nullable=True),
        *_timestamps(),
        sa.CheckConstraint("side IN ('long', 'short')", name="positions_side_known"),
        sa.CheckConstraint("status IN ('opening', 'open', 'closing', 'closed', 'failed')", name="positions_status_known"),
        sa.CheckConstraint(
            "requested_size_usd >= 0 AND size_usd >= 0 AND executed_qty >= 0 AND fee_usd >= 0",
            name="positions_sizes_not_negative",
        ),
        sa.CheckConstraint("avg_entry_price IS NULL OR avg_entry_price > 0", name="positions_entry_price_positive"),
        sa.CheckConstraint("close_price IS NULL OR close_price > 0", name="positions_close_price_positive"),
        sa.CheckConstraint(
            "status NOT IN ('open', 'closing') OR (executed_qty > 0 AND avg_entry_price IS NOT NULL AND opened_at IS NOT NULL)",
            name="positions_open_has_entry_facts",
        ),
        sa.CheckConstraint("status <> 'closing' OR close_intent_id IS NOT NULL", name="positions_closing_has_intent"),
        # "Closed" is a conclusion backed by facts.
        sa.CheckConstraint(
            "status <> 'closed' OR (close_exchange_order_id IS NOT NULL AND close_price IS NOT NULL "
            "AND closed_at IS NOT NULL AND realised_pnl_usd IS NOT NULL)",
            name="positions_closed_has_close_facts",
        ),
        schema=SCHEMA,
    )
    where_active = sa.text(f"status IN {ACTIVE}")
    op.create_index("positions_one_active_per_bot_symbol", "positions", ["bot_id", "symbol"], unique=True,
                    schema=SCHEMA, postgresql_where=where_active)
    # One-way mode: one bot at a time per exchange account and symbol.
    op.create_index("positions_one_active_per_account_symbol", "positions", ["exchange", "exchange_account", "symbol"],
                    unique=True, schema=SCHEMA, postgresql_where=where_active)
    op.create_index("positions_close_intent", "positions", ["close_intent_id"], unique=True, schema=SCHEMA,
                    postgresql_where=sa.text("close_intent_id IS NOT NULL"))
    op.create_index("positions_by_bot", "positions", ["bot_id", "status"], schema=SCHEMA)


def _create_answers_and_tokens() -> None:
    op.create_table(
        "preflight_answers",
        sa.Column("intent_id", sa.Uuid, primary_key=True),
        sa.Column("bot_id", sa.Uuid, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("answer", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("outcome IN ('reserved', 'rejected')", name="preflight_answers_outcome_known"),
        schema=SCHEMA,
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.Uuid, primary_key=True),
        sa.Column("lookup_key", sa.Text, nullable=False, unique=True),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'user')", name="api_tokens_role_known"),
        schema=SCHEMA,
    )


def upgrade() -> None:
    _create_bots()
    _create_positions()
    _create_answers_and_tokens()


def downgrade() -> None:
    for table in ("api_tokens", "preflight_answers", "positions", "bots"):
        op.drop_table(table, schema=SCHEMA)
