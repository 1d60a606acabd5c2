"""SQL on the reconciler schema: facts in (insert-only) and read back by position, and the backfills sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.bulk import any_of, array
from egis_common.ids import OrderPurpose
from reconciler import domain

SCHEMA = "reconciler"
metadata = sa.MetaData(schema=SCHEMA)


def _fact_table(name: str, *columns: sa.Column) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("message_id", sa.Uuid),
        sa.Column("exchange", sa.Text),
        sa.Column("exchange_account", sa.Text),
        sa.Column("symbol", sa.Text),
        sa.Column("bot_id", sa.Uuid),
        sa.Column("event_time", sa.DateTime(timezone=True)),
        sa.Column("raw", JSONB),
        *columns,
    )


def _numeric(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(asdecimal=True))


order_facts = _fact_table(
    "order_facts",
    sa.Column("exchange_order_id", sa.Text),
    sa.Column("client_order_id", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("side", sa.Text),
    sa.Column("order_type", sa.Text),
    sa.Column("reduce_only", sa.Boolean),
    _numeric("orig_qty"),
    _numeric("executed_qty"),
    _numeric("avg_price"),
)
algo_facts = _fact_table(
    "algo_facts",
    sa.Column("algo_id", sa.Text),
    sa.Column("client_algo_id", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("order_type", sa.Text),
    sa.Column("side", sa.Text),
    _numeric("trigger_price"),
    sa.Column("spawned_order_id", sa.Text),
)
trade_facts = _fact_table(
    "trade_facts",
    sa.Column("trade_id", sa.Text),
    sa.Column("exchange_order_id", sa.Text),
    sa.Column("side", sa.Text),
    _numeric("price"),
    _numeric("qty"),
    _numeric("realised_pnl_usd"),
    _numeric("commission"),
    sa.Column("commission_asset", sa.Text),
)
FACT_TABLES: dict[type, sa.Table] = {
    c.ExchangeOrderFact: order_facts,
    c.ExchangeAlgoOrderFact: algo_facts,
    c.ExchangeTradeFact: trade_facts,
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


ENTRY_PREFIX = f"eg{OrderPurpose.ENTRY.value}-"
backfills_sent = sa.Table(
    "backfills_sent",
    metadata,
    sa.Column("position_id", sa.Uuid, primary_key=True),
    sa.Column("close_exchange_order_id", sa.Text, primary_key=True),
    sa.Column("message_id", sa.Uuid),
    sa.Column("evidence", sa.JSON),
)


async def algo_clients_of(conn: AsyncConnection, order_ids: set[str]) -> list[str]:
    """Client ids of the algo orders that spawned these orders."""
    return list(
        (
            await conn.execute(
                sa.select(algo_facts.c.client_algo_id).where(algo_facts.c.spawned_order_id.in_(order_ids)).distinct()
            )
        )
        .scalars()
        .all()
    )


async def entries_of_liquidated(conn: AsyncConnection, order_ids: set[str]) -> list[str]:
    """Client ids of our entry orders on the accounts and symbols where these orders liquidated something."""
    columns = (order_facts.c.exchange, order_facts.c.exchange_account, order_facts.c.symbol)
    venue = sa.tuple_(*columns)
    liquidated = sa.select(*columns).where(
        order_facts.c.exchange_order_id.in_(order_ids),
        order_facts.c.client_order_id.startswith(domain.LIQUIDATION_PREFIX),
    )
    entries = (
        sa.select(order_facts.c.client_order_id)
        .where(venue.in_(liquidated), order_facts.c.client_order_id.startswith(ENTRY_PREFIX))
        .distinct()
    )
    return list((await conn.execute(entries)).scalars().all())


async def sent_first_time(conn: AsyncConnection, backfill: c.BackfillClosure) -> bool:
    """Records the backfill as sent; False when it was sent already (a position's close is backfilled once)."""
    statement = (
        insert(backfills_sent)
        .values(
            position_id=backfill.position_id,
            close_exchange_order_id=backfill.close_exchange_order_id,
            message_id=backfill.message_id,
            evidence=backfill.evidence,
        )
        .on_conflict_do_nothing()
        .returning(backfills_sent.c.position_id)
    )
    return (await conn.execute(statement)).first() is not None


# The columns the rules read, in the order of the domain records' fields (JSONB `raw` is evidence, never read here).
ORDER_FIELDS = [
    order_facts.c[n]
    for n in (
        "id",
        "exchange_order_id",
        "client_order_id",
        "status",
        "executed_qty",
        "event_time",
        "exchange",
        "exchange_account",
        "symbol",
    )
]
ALGO_FIELDS = [algo_facts.c[n] for n in ("id", "algo_id", "client_algo_id", "status", "spawned_order_id")]
TRADE_FIELDS = [
    trade_facts.c[n]
    for n in (
        "trade_id",
        "exchange_order_id",
        "price",
        "qty",
        "realised_pnl_usd",
        "commission",
        "commission_asset",
        "event_time",
    )
]


async def facts_for(
    conn: AsyncConnection, positions: Sequence[domain.PositionView], *, with_trades: bool = True
) -> domain.Facts:
    """Every fact about the orders that opened or could have closed these positions (trades unless told not to).

    Keys go to Postgres as one array parameter each (`= ANY(...)`, a join on `unnest` for composite keys):
    an IN list takes a parameter per key, and the driver allows 32767 of them, far fewer than positions.
    """
    client_ids = sorted(
        {i for p in positions for i in (*domain.closing_ids(p).values(), domain.entry_client_id(p)) if i}
    )
    if not client_ids:
        return domain.Facts()
    # An algo order links a position to a close only through the order it spawned: untriggered ones prove nothing.
    algos = [
        domain.AlgoFact(*row)
        for row in await conn.execute(
            sa.select(*ALGO_FIELDS).where(
                any_of(algo_facts.c.client_algo_id, client_ids), algo_facts.c.spawned_order_id.is_not(None)
            )
        )
    ]
    order_ids = {a.spawned_order_id for a in algos if a.spawned_order_id}
    order_ids |= {p.close_exchange_order_id for p in positions if p.close_exchange_order_id}
    by_client = sa.select(*ORDER_FIELDS).where(any_of(order_facts.c.client_order_id, client_ids))
    by_id = sa.select(*ORDER_FIELDS).where(any_of(order_facts.c.exchange_order_id, sorted(order_ids)))
    orders = [domain.OrderFact(*row) for row in await conn.execute(sa.union(by_client, by_id))]
    in_client_ids = set(client_ids)
    entries = {(o.exchange, o.exchange_account, o.symbol) for o in orders if o.client_order_id in in_client_ids}
    orders += [
        domain.OrderFact(*row)
        for row in await _rows_matching(
            conn,
            ORDER_FIELDS,
            ("exchange", "exchange_account", "symbol"),
            sorted(entries),
            order_facts.c.client_order_id.startswith(domain.LIQUIDATION_PREFIX),
        )
    ]
    trades = []
    if with_trades:
        venue_orders = sorted({(o.exchange, o.exchange_account, o.exchange_order_id) for o in orders})
        trades = [
            domain.TradeFact(*row)
            for row in await _rows_matching(
                conn, TRADE_FIELDS, ("exchange", "exchange_account", "exchange_order_id"), venue_orders
            )
        ]
    return domain.Facts(orders=tuple(orders), algos=tuple(algos), trades=tuple(trades))


async def _rows_matching(
    conn: AsyncConnection,
    fields: Sequence[sa.Column],
    key_columns: Sequence[str],
    keys: Sequence[tuple[str, ...]],
    *where: sa.ColumnElement,
) -> list[sa.Row]:
    """`fields` of the rows whose `key_columns` equal one of `keys`: a join on keys unnested from one array each."""
    if not keys:
        return []
    table = fields[0].table
    arrays = [array(table.c[name], [key[i] for key in keys]) for i, name in enumerate(key_columns)]
    wanted = sa.func.unnest(*arrays).table_valued(*key_columns).render_derived(name="wanted")
    on = sa.and_(*(table.c[name] == wanted.c[name] for name in key_columns))
    return list((await conn.execute(sa.select(*fields).join_from(table, wanted, on).where(*where))).all())
