"""SQL on the paper venue's tables (executor schema, migrations/versions/0003_paper_venue.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.bulk import any_of, array, by_column, insert_many, update_many

metadata = sa.MetaData(schema="executor")
# A row of these tables: Core tables carry no column types for SQLAlchemy to type a row by.
Row = sa.Row[*tuple[Any, ...]]
N = sa.Numeric(asdecimal=True)


def _table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(name, metadata, *columns)


accounts = _table(
    "paper_accounts",
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("wallet_balance_usd", N),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
positions = _table(
    "paper_positions",
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("symbol", sa.Text, primary_key=True),
    sa.Column("qty", N),
    sa.Column("entry_price", N),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
marks = _table(
    "paper_mark_prices",
    sa.Column("symbol", sa.Text, primary_key=True),
    sa.Column("price", N),
    sa.Column("as_of", sa.DateTime(timezone=True)),
)
orders = _table(
    "paper_orders",
    sa.Column("order_id", sa.BigInteger, primary_key=True),
    *(sa.Column(name, sa.Text) for name in ("account", "symbol", "client_order_id", "side", "order_type", "status")),
    sa.Column("reduce_only", sa.Boolean),
    *(sa.Column(name, N) for name in ("orig_qty", "executed_qty", "avg_price", "fee_usd", "realised_pnl_usd")),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
trades = _table(
    "paper_trades",
    sa.Column("trade_id", sa.BigInteger, primary_key=True),
    sa.Column("order_id", sa.BigInteger),
    *(sa.Column(name, sa.Text) for name in ("account", "symbol", "side", "commission_asset")),
    *(sa.Column(name, N) for name in ("price", "qty", "realised_pnl_usd", "commission")),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
stops = _table(
    "paper_stop_orders",
    sa.Column("algo_id", sa.BigInteger, primary_key=True),
    *(sa.Column(name, sa.Text) for name in ("account", "symbol", "client_algo_id", "side", "kind", "status")),
    sa.Column("trigger_price", N),
    sa.Column("spawned_order_id", sa.BigInteger),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


_OPEN_ACCOUNTS = insert_many(accounts, ("account", "wallet_balance_usd"), "ON CONFLICT DO NOTHING")


async def lock_accounts(conn: AsyncConnection, opening_usd: dict[str, Decimal]) -> dict[str, Decimal]:
    """Wallet balances, locked in account order; an account is funded with its opening balance on first use."""
    funded = sorted(opening_usd.items())
    await conn.execute(
        _OPEN_ACCOUNTS, {"account": [a for a, _ in funded], "wallet_balance_usd": [usd for _, usd in funded]}
    )
    query = (
        sa.select(accounts.c.account, accounts.c.wallet_balance_usd)
        .where(any_of(accounts.c.account, sorted(opening_usd)))
        .order_by(accounts.c.account)
        .with_for_update()
    )
    return {row.account: row.wallet_balance_usd for row in (await conn.execute(query)).all()}


_SET_WALLETS = update_many(accounts, ("account", "wallet_balance_usd"), ", updated_at = now()")


async def set_wallets(conn: AsyncConnection, balances_usd: dict[str, Decimal]) -> None:
    if balances_usd:
        await conn.execute(
            _SET_WALLETS, {"account": list(balances_usd), "wallet_balance_usd": list(balances_usd.values())}
        )


async def fund(conn: AsyncConnection, account: str, balance_usd: Decimal) -> None:
    statement = insert(accounts).values(account=account, wallet_balance_usd=balance_usd)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[accounts.c.account], set_={"wallet_balance_usd": balance_usd, "updated_at": sa.func.now()}
        )
    )


async def used_margins(conn: AsyncConnection, names: Iterable[str], leverage: Decimal) -> dict[str, Decimal]:
    """Margin every position of each account holds (notional at entry over leverage)."""
    notional = sa.func.sum(sa.func.abs(positions.c.qty) * positions.c.entry_price)
    query = (
        sa.select(positions.c.account, notional.label("notional"))
        .where(any_of(positions.c.account, sorted(set(names))))
        .group_by(positions.c.account)
    )
    return {row.account: Decimal(row.notional) / leverage for row in (await conn.execute(query)).all()}


async def positions_of(
    conn: AsyncConnection, pairs: Iterable[tuple[str, str]], *, lock: bool = True
) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """(account, symbol) -> (signed qty, entry price) for the pairs the venue has seen; the others are flat."""
    pairs = sorted(set(pairs))
    wanted = (
        sa.func.unnest(
            array(positions.c.account, [a for a, _ in pairs]), array(positions.c.symbol, [s for _, s in pairs])
        )
        .table_valued("account", "symbol")
        .render_derived(name="wanted")
    )
    query = sa.select(positions.c.account, positions.c.symbol, positions.c.qty, positions.c.entry_price).where(
        sa.tuple_(positions.c.account, positions.c.symbol).in_(sa.select(wanted.c.account, wanted.c.symbol))
    )
    found = (await conn.execute(query.with_for_update() if lock else query)).all()
    return {(row.account, row.symbol): (row.qty, row.entry_price) for row in found}


_POSITION_FIELDS = ("account", "symbol", "qty", "entry_price")
_SAVE_POSITIONS = insert_many(
    positions,
    _POSITION_FIELDS,
    "ON CONFLICT (account, symbol) DO UPDATE SET "
    "qty = EXCLUDED.qty, entry_price = EXCLUDED.entry_price, updated_at = now()",
)


async def save_positions(conn: AsyncConnection, changed: dict[tuple[str, str], tuple[Decimal, Decimal]]) -> None:
    if changed:
        rows = [{"account": a, "symbol": s, "qty": q, "entry_price": e} for (a, s), (q, e) in changed.items()]
        await conn.execute(_SAVE_POSITIONS, by_column(rows, _POSITION_FIELDS))


async def marks_of(conn: AsyncConnection, symbols: Iterable[str]) -> dict[str, Decimal]:
    query = sa.select(marks.c.symbol, marks.c.price).where(any_of(marks.c.symbol, sorted(set(symbols))))
    return {row.symbol: row.price for row in (await conn.execute(query)).all()}


async def mark(conn: AsyncConnection, symbol: str) -> Decimal | None:
    return await conn.scalar(sa.select(marks.c.price).where(marks.c.symbol == symbol))


async def set_mark(conn: AsyncConnection, symbol: str, price: Decimal, as_of: datetime) -> bool:
    """Keeps the newest price; an older one arriving late changes nothing. True when it was stored."""
    statement = insert(marks).values(symbol=symbol, price=price, as_of=as_of)
    statement = statement.on_conflict_do_update(
        index_elements=[marks.c.symbol], set_={"price": price, "as_of": as_of}, where=marks.c.as_of <= as_of
    )
    return (await conn.execute(statement.returning(marks.c.symbol))).first() is not None


_ORDER_FIELDS = (
    "account",
    "symbol",
    "client_order_id",
    "side",
    "order_type",
    "status",
    "reduce_only",
    "orig_qty",
    "executed_qty",
    "avg_price",
    "fee_usd",
    "realised_pnl_usd",
)
_TRADE_FIELDS = (
    "order_id",
    "account",
    "symbol",
    "side",
    "commission_asset",
    "price",
    "qty",
    "realised_pnl_usd",
    "commission",
)
_INSERT_ORDERS = insert_many(orders, _ORDER_FIELDS, f"RETURNING {', '.join(orders.c.keys())}", in_order=True).columns(
    *orders.c
)
_INSERT_TRADES = insert_many(trades, _TRADE_FIELDS, f"RETURNING {', '.join(trades.c.keys())}", in_order=True).columns(
    *trades.c
)


async def insert_orders(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[Row]:
    """The inserted rows, in the order given."""
    if not rows:
        return []
    return sorted((await conn.execute(_INSERT_ORDERS, by_column(rows, _ORDER_FIELDS))).all(), key=lambda r: r.order_id)


async def insert_trades(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[Row]:
    """The inserted rows, in the order given."""
    if not rows:
        return []
    return sorted((await conn.execute(_INSERT_TRADES, by_column(rows, _TRADE_FIELDS))).all(), key=lambda r: r.trade_id)


async def latest_order(conn: AsyncConnection, account: str, client_order_id: str) -> Row | None:
    query = sa.select(orders).where(orders.c.account == account, orders.c.client_order_id == client_order_id)
    return (await conn.execute(query.order_by(orders.c.order_id.desc()).limit(1))).first()


def order_lock_key(client_order_id: str) -> int:
    """The advisory lock key of the orders with this client order id: a booking of one and a final look-up of
    it hold it in turn. A 64-bit hash, namespaced apart from the other advisory locks in the database; two ids
    that share a key only wait for each other."""
    digest = hashlib.blake2b(f"egis.paper_order:{client_order_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_orders(conn: AsyncConnection, client_order_ids: Iterable[str]) -> datetime:
    """Hold the orders' advisory locks until the transaction ends, in key order (no two transactions wait on
    each other); returns the database's clock once they are held, which is what `not_after` is held to."""
    keys = sorted({order_lock_key(client_order_id) for client_order_id in client_order_ids})
    if keys:
        await conn.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(k.key) FROM unnest(CAST(:keys AS BIGINT[])) "
                "WITH ORDINALITY AS k(key, n) ORDER BY k.n"
            ),
            {"keys": keys},
        )
    # clock_timestamp() is never NULL, and SQLAlchemy does not know its type.
    return cast(datetime, await conn.scalar(sa.select(sa.func.clock_timestamp())))


async def insert_stop(conn: AsyncConnection, row: dict[str, Any]) -> Row | None:
    """None when an open stop already has this client algo id (unique among open ones, like Binance)."""
    statement = insert(stops).values(**row, status="NEW").on_conflict_do_nothing()
    inserted: Row | None = (await conn.execute(statement.returning(stops))).first()
    return inserted


async def open_stops(conn: AsyncConnection, symbol: str, account: str | None = None) -> Sequence[Row]:
    query = sa.select(stops).where(stops.c.symbol == symbol, stops.c.status == "NEW")
    if account is not None:
        query = query.where(stops.c.account == account)
    return (await conn.execute(query.order_by(stops.c.algo_id).with_for_update(skip_locked=True))).all()


async def close_stop(conn: AsyncConnection, algo_id: int, status: str, spawned_order_id: int | None = None) -> None:
    await conn.execute(
        stops.update()
        .where(stops.c.algo_id == algo_id)
        .values(status=status, spawned_order_id=spawned_order_id, updated_at=sa.func.now())
    )
