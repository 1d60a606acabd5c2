"""The paper exchange's own state: accounts, positions, orders, trades, mark prices, stop orders.

This is the venue, not the executor's bookkeeping: only `egis_venues.paper`
writes it, in transactions of its own, exactly as a remote exchange commits an
order whatever happens to the caller afterwards. Like Binance, the venue does
not make client order ids unique (only among open stop orders): idempotency
is the executor's job.
"""

import sqlalchemy as sa
from alembic import op

revision = "executor_0003"
down_revision = "executor_0002"
branch_labels = None
depends_on = None
SCHEMA = "executor"


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _side(table: str) -> sa.CheckConstraint:
    return sa.CheckConstraint("side IN ('BUY', 'SELL')", name=f"{table}_side_known")


def _accounts_positions_marks() -> None:
    op.create_table(
        "paper_accounts",
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("wallet_balance_usd", sa.Numeric, nullable=False),
        _now("updated_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "paper_positions",  # one-way mode: one signed quantity per account and symbol
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("qty", sa.Numeric, nullable=False),  # > 0 long, < 0 short
        sa.Column("entry_price", sa.Numeric, nullable=False),
        _now("updated_at"),
        sa.CheckConstraint("qty = 0 OR entry_price > 0", name="paper_positions_entry_price"),
        schema=SCHEMA,
    )
    op.create_table(
        "paper_mark_prices",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("price", sa.Numeric, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price > 0", name="paper_mark_prices_positive"),
        schema=SCHEMA,
    )


def _orders_and_trades() -> None:
    op.create_table(
        "paper_orders",
        sa.Column("order_id", sa.BigInteger, sa.Identity(start=8_000_000_001), primary_key=True),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("client_order_id", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("order_type", sa.Text, nullable=False),
        sa.Column("reduce_only", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("orig_qty", sa.Numeric, nullable=False),
        sa.Column("executed_qty", sa.Numeric, nullable=False),
        sa.Column("avg_price", sa.Numeric, nullable=False),
        sa.Column("fee_usd", sa.Numeric, nullable=False),
        sa.Column("realised_pnl_usd", sa.Numeric, nullable=False),
        _now("created_at"),
        _side("paper_orders"),
        sa.CheckConstraint("status IN ('FILLED', 'EXPIRED')", name="paper_orders_status_known"),
        sa.CheckConstraint("orig_qty > 0 AND executed_qty >= 0 AND executed_qty <= orig_qty",
                           name="paper_orders_quantities"),
        sa.CheckConstraint("status <> 'FILLED' OR executed_qty = orig_qty", name="paper_orders_filled_in_full"),
        sa.CheckConstraint("fee_usd >= 0", name="paper_orders_fee_not_negative"),
        schema=SCHEMA,
    )
    op.create_index("paper_orders_by_client_id", "paper_orders", ["account", "client_order_id"], schema=SCHEMA)
    op.create_table(
        "paper_trades",
        sa.Column("trade_id", sa.BigInteger, sa.Identity(start=5_000_000_001), primary_key=True),
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.paper_orders.order_id"), nullable=False),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("price", sa.Numeric, nullable=False),
        sa.Column("qty", sa.Numeric, nullable=False),
        sa.Column("realised_pnl_usd", sa.Numeric, nullable=False),
        sa.Column("commission", sa.Numeric, nullable=False),
        sa.Column("commission_asset", sa.Text, nullable=False),
        _now("created_at"),
        _side("paper_trades"),
        sa.CheckConstraint("price > 0 AND qty > 0 AND commission >= 0", name="paper_trades_amounts"),
        schema=SCHEMA,
    )


def _stop_orders() -> None:
    op.create_table(
        "paper_stop_orders",
        sa.Column("algo_id", sa.BigInteger, sa.Identity(start=3_000_000_001), primary_key=True),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("client_algo_id", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("trigger_price", sa.Numeric, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("spawned_order_id", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.paper_orders.order_id"), nullable=True),
        _now("created_at"), _now("updated_at"),
        _side("paper_stop_orders"),
        sa.CheckConstraint("kind IN ('TAKE_PROFIT_MARKET', 'STOP_MARKET')", name="paper_stop_orders_kind_known"),
        sa.CheckConstraint("status IN ('NEW', 'FINISHED', 'EXPIRED', 'CANCELED')", name="paper_stop_orders_status"),
        sa.CheckConstraint("trigger_price > 0", name="paper_stop_orders_trigger_positive"),
        schema=SCHEMA,
    )
    # Like Binance: a client algo id is unique among open (NEW) algo orders only.
    op.create_index("paper_stop_orders_open_client_id", "paper_stop_orders", ["account", "client_algo_id"],
                    unique=True, schema=SCHEMA, postgresql_where=sa.text("status = 'NEW'"))
    op.create_index("paper_stop_orders_open_by_symbol", "paper_stop_orders", ["symbol"], schema=SCHEMA,
                    postgresql_where=sa.text("status = 'NEW'"))


def upgrade() -> None:
    _accounts_positions_marks()
    _orders_and_trades()
    _stop_orders()


def downgrade() -> None:
    for table in ("paper_stop_orders", "paper_trades", "paper_orders", "paper_mark_prices", "paper_positions",
                  "paper_accounts"):
        op.drop_table(table, schema=SCHEMA)
