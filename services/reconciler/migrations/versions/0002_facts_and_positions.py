"""Immutable exchange facts, the read model of ledger positions, and admin repair runs.

Facts are never updated in place: a later status is a new row. The database
itself refuses UPDATE, DELETE and TRUNCATE on the fact tables.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "reconciler_0002"
down_revision = "reconciler_0001"
branch_labels = None
depends_on = None
SCHEMA = "reconciler"
FACT_TABLES = ("order_facts", "algo_facts", "trade_facts")


def _fact_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("message_id", sa.Uuid, nullable=False),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("exchange_account", sa.Text, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("bot_id", sa.Uuid, nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw", JSONB, nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def _create_facts() -> None:
    op.create_table(
        "order_facts", *_fact_columns(),
        sa.Column("exchange_order_id", sa.Text, nullable=False),
        sa.Column("client_order_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("order_type", sa.Text, nullable=False),
        sa.Column("reduce_only", sa.Boolean, nullable=False),
        sa.Column("orig_qty", sa.Numeric, nullable=False),
        sa.Column("executed_qty", sa.Numeric, nullable=False),
        sa.Column("avg_price", sa.Numeric, nullable=False),
        sa.UniqueConstraint("exchange", "exchange_account", "exchange_order_id", "status", "executed_qty",
                            name="order_facts_natural_key"),
        sa.CheckConstraint("executed_qty >= 0 AND orig_qty >= 0 AND avg_price >= 0", name="order_facts_not_negative"),
        schema=SCHEMA,
    )
    op.create_index("order_facts_client_id", "order_facts", ["client_order_id"], schema=SCHEMA)
    op.create_table(
        "algo_facts", *_fact_columns(),
        sa.Column("algo_id", sa.Text, nullable=False),
        sa.Column("client_algo_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("order_type", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("trigger_price", sa.Numeric, nullable=False),
        sa.Column("spawned_order_id", sa.Text, nullable=True),
        schema=SCHEMA,
    )
    # The same status with a newly known spawned order is a new fact; a replay is not.
    op.execute(f"CREATE UNIQUE INDEX algo_facts_natural_key ON {SCHEMA}.algo_facts "
               "(exchange, exchange_account, algo_id, status, coalesce(spawned_order_id, ''))")
    op.create_index("algo_facts_client_id", "algo_facts", ["client_algo_id"], schema=SCHEMA)
    op.create_table(
        "trade_facts", *_fact_columns(),
        sa.Column("trade_id", sa.Text, nullable=False),
        sa.Column("exchange_order_id", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("price", sa.Numeric, nullable=False),
        sa.Column("qty", sa.Numeric, nullable=False),
        sa.Column("realised_pnl_usd", sa.Numeric, nullable=False),
        sa.Column("commission", sa.Numeric, nullable=False),
        sa.Column("commission_asset", sa.Text, nullable=False),
        sa.UniqueConstraint("exchange", "exchange_account", "trade_id", name="trade_facts_natural_key"),
        sa.CheckConstraint("price > 0 AND qty > 0 AND commission >= 0", name="trade_facts_positive"),
        schema=SCHEMA,
    )
    op.create_index("trade_facts_order", "trade_facts", ["exchange_order_id"], schema=SCHEMA)


def _refuse_changes() -> None:
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.refuse_fact_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'exchange facts are immutable: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END $$""")
    for table in FACT_TABLES:
        op.execute(f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {SCHEMA}.{table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_fact_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {SCHEMA}.{table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_fact_change()")


def _create_positions_and_runs() -> None:
    op.create_table(
        "positions",  # the reconciler's read model of the ledger's positions, from ledger events
        sa.Column("position_id", sa.Uuid, primary_key=True),
        sa.Column("bot_id", sa.Uuid, nullable=False),
        sa.Column("symbol", sa.Text, nullable=True),
        sa.Column("side", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("open_intent_id", sa.Uuid, nullable=True),
        sa.Column("close_intent_id", sa.Uuid, nullable=True),
        sa.Column("executed_qty", sa.Numeric, nullable=True),
        sa.Column("avg_entry_price", sa.Numeric, nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_exchange_order_id", sa.Text, nullable=True),
        sa.Column("close_price", sa.Numeric, nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("realised_pnl_usd", sa.Numeric, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('opening', 'open', 'closing', 'closed', 'failed')", name="positions_status_known"),
        schema=SCHEMA,
    )
    op.create_index("positions_by_bot", "positions", ["bot_id", "status"], schema=SCHEMA)
    op.create_table(
        "repair_runs",
        sa.Column("request_id", sa.Uuid, primary_key=True),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("operator_id", sa.Text, nullable=False),
        sa.Column("confirm", sa.Boolean, nullable=False),
        sa.Column("bot_id", sa.Uuid, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("report", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('ok', 'refused', 'failed')", name="repair_runs_status_known"),
        schema=SCHEMA,
    )


def _create_pending() -> None:
    op.create_table(
        "pending_orders",  # every OrderPendingReconciliation, until something settles it
        sa.Column("intent_id", sa.Uuid, primary_key=True),
        sa.Column("bot_id", sa.Uuid, nullable=False),
        sa.Column("position_id", sa.Uuid, nullable=False),
        sa.Column("intent", sa.Text, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("client_order_id", sa.Text, nullable=False),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("exchange_account", sa.Text, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("evidence", JSONB, nullable=True),
        sa.CheckConstraint("(resolved_at IS NULL) = (resolution IS NULL)", name="pending_orders_resolution_complete"),
        schema=SCHEMA,
    )
    op.create_index("pending_orders_open", "pending_orders", ["pending_since"], schema=SCHEMA,
                    postgresql_where=sa.text("resolved_at IS NULL"))


def _create_backfills_sent() -> None:
    op.create_table(
        "backfills_sent",  # closures found automatically: each one is sent to the ledger once
        sa.Column("position_id", sa.Uuid, primary_key=True),
        sa.Column("close_exchange_order_id", sa.Text, primary_key=True),
        sa.Column("message_id", sa.Uuid, nullable=False),
        sa.Column("evidence", JSONB, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def upgrade() -> None:
    _create_facts()
    _refuse_changes()
    _create_positions_and_runs()
    _create_pending()
    _create_backfills_sent()


def downgrade() -> None:
    for table in ("backfills_sent", "pending_orders", "repair_runs", "positions", *FACT_TABLES):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f"DROP FUNCTION {SCHEMA}.refuse_fact_change()")
