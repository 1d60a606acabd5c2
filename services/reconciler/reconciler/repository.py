"""SQL on the reconciler schema: facts in (insert-only), the positions read model, repair runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from egis_common import contracts as c
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciler import domain

SCHEMA = "reconciler"
metadata = sa.MetaData(schema=SCHEMA)


def _fact_table(name: str, *columns: sa.Column) -> sa.Table:
    return sa.Table(
        name, metadata, sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("message_id", sa.Uuid),
        sa.Column("exchange", sa.Text), sa.Column("exchange_account", sa.Text), sa.Column("symbol", sa.Text),
        sa.Column("bot_id", sa.Uuid), sa.Column("event_time", sa.DateTime(timezone=True)), sa.Column("raw", JSONB),
        *columns,
    )


def _numeric(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(asdecimal=True))


order_facts = _fact_table(
    "order_facts", sa.Column("exchange_order_id", sa.Text), sa.Column("client_order_id", sa.Text),
    sa.Column("status", sa.Text), sa.Column("side", sa.Text), sa.Column("order_type", sa.Text),
    sa.Column("reduce_only", sa.Boolean), _numeric("orig_qty"), _numeric("executed_qty"), _numeric("avg_price"),
)
algo_facts = _fact_table(
    "algo_facts", sa.Column("algo_id", sa.Text), sa.Column("client_algo_id", sa.Text), sa.Column("status", sa.Text),
    sa.Column("order_type", sa.Text), sa.Column("side", sa.Text), _numeric("trigger_price"),
    sa.Column("spawned_order_id", sa.Text),
)
trade_facts = _fact_table(
    "trade_facts", sa.Column("trade_id", sa.Text), sa.Column("exchange_order_id", sa.Text), sa.Column("side", sa.Text),
    _numeric("price"), _numeric("qty"), _numeric("realised_pnl_usd"), _numeric("commission"),
    sa.Column("commission_asset", sa.Text),
)
FACT_TABLES: dict[type, sa.Table] = {
    c.ExchangeOrderFact: order_facts, c.ExchangeAlgoOrderFact: algo_facts, c.ExchangeTradeFact: trade_facts,
}


def _fact_row(fact: c.Message) -> dict[str, Any]:
    row = fact.model_dump(exclude={"schema_version", "occurred_at", "type"})
    row["exchange"] = fact.exchange.value
    return row


async def insert_facts(conn: AsyncConnection, facts: Sequence[c.Message]) -> dict[str, int]:
    """Insert-only: a fact already stored (same natural key) is left as it is. Returns the new rows by table."""
    inserted: dict[str, int] = {}
    for kind, table in FACT_TABLES.items():
        rows = [_fact_row(f) for f in facts if isinstance(f, kind)]
        if rows:
            statement = insert(table).values(rows).on_conflict_do_nothing().returning(table.c.id)
            inserted[table.name] = len((await conn.execute(statement)).all())
    return inserted


async def facts_for(conn: AsyncConnection, positions: Sequence[domain.PositionView]) -> domain.Facts:
    """Every fact about the orders that opened or could have closed these positions."""
    client_ids = {i for p in positions for i in (*domain.closing_ids(p).values(), domain.entry_client_id(p)) if i}
    algos = (await conn.execute(sa.select(algo_facts).where(algo_facts.c.client_algo_id.in_(client_ids)))).all()
    order_ids = {a.spawned_order_id for a in algos if a.spawned_order_id}
    order_ids |= {p.close_exchange_order_id for p in positions if p.close_exchange_order_id}
    orders = (await conn.execute(sa.select(order_facts).where(sa.or_(
        order_facts.c.client_order_id.in_(client_ids), order_facts.c.exchange_order_id.in_(order_ids))))).all()
    orders = [*orders, *await _liquidations_after(conn, [o for o in orders if o.client_order_id in client_ids])]
    venue_orders = list({(o.exchange, o.exchange_account, o.exchange_order_id) for o in orders})
    venue_key = sa.tuple_(trade_facts.c.exchange, trade_facts.c.exchange_account, trade_facts.c.exchange_order_id)
    trades = (await conn.execute(sa.select(trade_facts).where(venue_key.in_(venue_orders)))).all() if orders else []
    return domain.Facts(
        orders=tuple(domain.OrderFact(o.id, o.exchange_order_id, o.client_order_id, o.status, o.executed_qty,
                                      o.event_time, o.exchange, o.exchange_account, o.symbol) for o in orders),
        algos=tuple(domain.AlgoFact(a.id, a.algo_id, a.client_algo_id, a.status, a.spawned_order_id) for a in algos),
        trades=tuple(domain.TradeFact(t.trade_id, t.exchange_order_id, t.price, t.qty, t.realised_pnl_usd,
                                      t.commission, t.commission_asset, t.event_time) for t in trades),
    )


async def _liquidations_after(conn: AsyncConnection, entries: Sequence[sa.Row]) -> list[sa.Row]:
    """Liquidation orders on the accounts and symbols of these orders: the venue's own closes."""
    if not entries:
        return []
    venues = list({(o.exchange, o.exchange_account, o.symbol) for o in entries})
    where = sa.tuple_(order_facts.c.exchange, order_facts.c.exchange_account, order_facts.c.symbol).in_(venues)
    query = sa.select(order_facts).where(where, order_facts.c.client_order_id.startswith(domain.LIQUIDATION_PREFIX))
    return list((await conn.execute(query)).all())
