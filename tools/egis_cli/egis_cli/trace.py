"""`egis trace <id>`: one signal's path in time order, from the services' databases and their logs.

The id may be a signal's, a position's, an intent's or a client order id. From it the trace gathers every id
that belongs to the same path (the signal's intent, its position, the position's other intent and signal, their
orders' client ids and exchange order ids) and then every row and log line that carries one of them. The
databases are only read (a read-only transaction); a table a system does not have yet is left out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
import typer
from rich.status import Status
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from egis_cli.main import EXIT_UNAVAILABLE, EXIT_USAGE, Failure, Json, clean_errors, emit, err, out, setting, table
from egis_common.ids import OrderPurpose, client_order_id, intent_id_for, intent_id_from_client_order_id

DATABASE = "EGIS_DATABASE_URL"
CONNECT_TIMEOUT_S = 5.0
SCHEMAS = ("signal_router", "executor", "ledger", "reconciler")
LOG_ID_FIELDS = ("signal_id", "intent_id", "position_id", "client_order_id")
# Fields of a log line that the table's other columns already show.
LOG_SHOWN = {"event", "timestamp", "level", "service", "logger", "bot_id", *LOG_ID_FIELDS}
LOG_STAGE = 99  # a log line and a row at the same instant: the row first
EXPANSION_ROUNDS = 6  # signal -> intent -> position -> the other intent -> its signal and orders: settled well before


@dataclass
class Ids:
    """Every id of one path: its signals, intents, positions, client order ids and the venue's order ids."""

    signals: set[UUID] = field(default_factory=set)
    intents: set[UUID] = field(default_factory=set)
    positions: set[UUID] = field(default_factory=set)
    client_orders: set[str] = field(default_factory=set)
    exchange_orders: set[str] = field(default_factory=set)

    def size(self) -> int:
        return sum(
            len(s) for s in (self.signals, self.intents, self.positions, self.client_orders, self.exchange_orders)
        )

    def params(self) -> dict[str, list[Any]]:
        return {
            "s": sorted(self.signals),
            "i": sorted(self.intents),
            "p": sorted(self.positions),
            "c": sorted(self.client_orders),
            "e": sorted(self.exchange_orders),
        }

    def add_intent(self, intent_id: UUID | None) -> None:
        if intent_id is not None:
            self.intents.add(intent_id)
            self.client_orders.update(client_order_id(intent_id, purpose) for purpose in OrderPurpose)

    def for_logs(self) -> set[str]:
        return {str(i) for i in (*self.signals, *self.intents, *self.positions)} | self.client_orders


@dataclass(frozen=True)
class Event:
    at: datetime
    source: str
    what: str
    ids: dict[str, str]
    stage: int = LOG_STAGE

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "source": self.source, "what": self.what, "ids": self.ids}


@clean_errors
def trace(
    trace_id: Annotated[str, typer.Argument(metavar="ID", help="a signal id, position id or client order id")],
    logs: Annotated[
        Path | None,
        typer.Option(help="the services' JSON log files (*.log); default: the local system's logs directory"),
    ] = None,
    as_json: Json = False,
) -> None:
    """One signal's path in time order: webhook, router decision, intent, reservation, orders and trades,
    position changes, reconciler facts, and the services' log lines about it. Takes a signal id, a position id
    or a client order id (which one it is is found out); reads the databases (EGIS_DATABASE_URL) and the logs."""
    url = setting(DATABASE, "Postgres's URL; ./egis up writes it", DATABASE)
    log_dir = logs if logs is not None else _local_logs()
    if logs is not None and not logs.is_dir():
        raise Failure(f"--logs {logs}: no such directory", EXIT_USAGE)
    with Status("reading the databases and the logs", console=err):
        kind, ids, events = asyncio.run(_gather(url, trace_id.strip()))
        events += list(log_events(log_dir, ids.for_logs()) if log_dir else [])
    if not events:
        raise Failure(f"{trace_id}: no signal, position or client order with this id in the databases or the logs")
    events.sort(key=lambda e: (e.at, e.stage))
    emit([e.as_json() for e in events], as_json, lambda: render(trace_id, kind, ids, events))


def _local_logs() -> Path | None:
    from egis_localinfra.cli import STATE_DIR  # costs an import: only without --logs

    return STATE_DIR / "logs" if (STATE_DIR / "logs").is_dir() else None


# ---------------------------------------------------------------- the databases


async def _gather(url: str, trace_id: str) -> tuple[str, Ids, list[Event]]:
    address = make_url(url)
    engine = create_async_engine(
        address.set(drivername="postgresql+asyncpg"), connect_args={"timeout": CONNECT_TIMEOUT_S}
    )
    try:
        try:
            conn = await engine.connect()
        except Exception as error:  # noqa: BLE001 - refused, unknown host, wrong login: all say "not reachable"
            raise Failure(
                f"cannot reach the database at {address.host}:{address.port} ({type(error).__name__}); "
                "is Egis up? ./egis status",
                EXIT_UNAVAILABLE,
            ) from None
        try:
            await conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            db = Database(conn, await _tables(conn))
            ids = Ids()
            kind = await db.start(ids, trace_id)
            await db.expand(ids)
            return kind, ids, await db.events(ids)
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def _tables(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(
        sa.text("SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema = ANY(:s)"),
        {"s": list(SCHEMAS)},
    )
    return set(rows.scalars())


# Which kind of id a UUID is: the first table that has it says.
KINDS = (
    ("signal", "signal_router.signals", "signal_id = ANY(:x)"),
    ("signal", "ledger.signal_journal", "signal_id = ANY(:x)"),
    ("signal", "executor.intents", "signal_id = ANY(:x)"),
    ("position", "ledger.positions", "position_id = ANY(:x)"),
    ("position", "reconciler.positions", "position_id = ANY(:x)"),
    ("intent", "executor.intents", "intent_id = ANY(:x)"),
)


class Database:
    def __init__(self, conn: AsyncConnection, tables: set[str]) -> None:
        self.conn, self.tables = conn, tables

    async def rows(self, table: str, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of `table` (schema.name) matching `where`; none when the system has no such table."""
        if table not in self.tables:
            return []
        result = await self.conn.execute(sa.text(f"SELECT * FROM {table} WHERE {where}"), params)  # noqa: S608
        return [dict(row._mapping) for row in result]

    async def start(self, ids: Ids, trace_id: str) -> str:
        """Seed `ids` from the id asked about, and say which kind of id it is."""
        try:
            asked = UUID(trace_id)
        except ValueError:
            ids.client_orders.add(trace_id)
            return "client order"
        kind = await self._kind_of(asked)
        if kind == "position":
            ids.positions.add(asked)
        elif kind == "intent":
            ids.add_intent(asked)
        else:
            ids.signals.add(asked)
        return kind

    async def _kind_of(self, asked: UUID) -> str:
        for kind, where_kept, where in KINDS:
            if await self.rows(where_kept, where, {"x": [asked]}):
                return kind
        return "signal"  # in no table: perhaps only log lines know it

    async def expand(self, ids: Ids) -> None:
        """Follow the links between the ids until no new one turns up."""
        for _ in range(EXPANSION_ROUNDS):
            before = ids.size()
            await self._expand_once(ids)
            if ids.size() == before:
                return

    async def _expand_once(self, ids: Ids) -> None:
        for signal_id in list(ids.signals):
            ids.add_intent(intent_id_for(signal_id))
        for value in list(ids.client_orders):
            try:
                ids.add_intent(intent_id_from_client_order_id(value))
            except ValueError:
                pass  # not one of Egis's: the venue's own (a triggered stop's order), found through its facts
        p = ids.params()
        for row in await self.rows(
            "executor.intents", "intent_id = ANY(:i) OR signal_id = ANY(:s) OR position_id = ANY(:p)", p
        ):
            ids.signals.add(row["signal_id"])
            ids.add_intent(row["intent_id"])
            _add(ids.positions, row["position_id"])
            _add(ids.client_orders, row["client_order_id"])
            _add(ids.exchange_orders, row["exchange_order_id"])
        where = "position_id = ANY(:p) OR open_intent_id = ANY(:i) OR close_intent_id = ANY(:i)"
        for row in await self.rows("ledger.positions", where, p):
            ids.positions.add(row["position_id"])
            for name in ("open_intent_id", "close_intent_id"):
                ids.add_intent(row[name])
            for name in ("tp_order_id", "sl_order_id"):
                _add(ids.client_orders, row[name])
            for name in ("open_exchange_order_id", "close_exchange_order_id"):
                _add(ids.exchange_orders, row[name])
        for row in await self.rows("executor.stop_orders", "intent_id = ANY(:i)", p):
            ids.client_orders.add(row["client_algo_id"])
        for row in await self.rows("reconciler.order_facts", "client_order_id = ANY(:c)", p):
            ids.exchange_orders.add(row["exchange_order_id"])
        for row in await self.rows("reconciler.algo_facts", "client_algo_id = ANY(:c)", p):
            _add(ids.exchange_orders, row["spawned_order_id"])
        for row in await self.rows("executor.paper_orders", "client_order_id = ANY(:c)", p):
            ids.exchange_orders.add(str(row["order_id"]))
        for row in await self.rows("executor.paper_stop_orders", "client_algo_id = ANY(:c)", p):
            _add(ids.exchange_orders, row["spawned_order_id"] and str(row["spawned_order_id"]))

    async def events(self, ids: Ids) -> list[Event]:
        p = ids.params()
        found: list[Event] = []
        for where_kept, where, describe in SOURCES:
            for row in await self.rows(where_kept, where, p):
                found.extend(describe(row))
        return found


def _add(into: set, value: Any) -> None:
    if value is not None:
        into.add(value)


# ---------------------------------------------------------------- rows as events


def _ids(row: dict[str, Any], *names: str) -> dict[str, str]:
    return {name: str(row[name]) for name in names if row.get(name) is not None}


def _events(row: dict[str, Any], ids: dict[str, str], *happened: tuple[int, str, str, str]) -> Iterator[Event]:
    """(stage, time column, source, what) for each thing the row says happened; a time not yet set is skipped."""
    for stage, column, source, what in happened:
        if (at := row.get(column)) is not None:  # a column an older schema lacks reads as not yet
            yield Event(at, source, what, ids, stage)


def _signal(row: dict[str, Any]) -> Iterator[Event]:
    ids = _ids(row, "signal_id", "bot_id", "intent_id")
    decision = (
        f"routed to intent {row['intent_id']}" if row["outcome"] == "routed" else f"skipped: {row['skip_reason']}"
    )
    yield from _events(
        row,
        ids,
        (0, "received_at", "gateway", f"webhook accepted, signal key {row['signal_key']}"),
        (2, "decided_at", "signal_router", decision),
    )


def _journal(row: dict[str, Any]) -> Iterator[Event]:
    what = f"journal: {row['outcome']}"
    if row["reason"]:
        what += f" ({row['reason']}{': ' + row['detail'] if row['detail'] else ''})"
    if row["action"]:
        what += f", {row['action']} {row['symbol']}"
    yield from _events(row, _ids(row, "signal_id", "bot_id", "intent_id"), (1, "received_at", "ledger", what))


def _intent(row: dict[str, Any]) -> Iterator[Event]:
    ids = _ids(row, "signal_id", "intent_id", "position_id", "client_order_id")
    asked = f"{row['kind']} {row['side'] or ''} {row['symbol']}".replace("  ", " ")
    if row["requested_size_usd"] is not None:
        asked += f", ${row['requested_size_usd']} requested"
    for leg in ("take_profit_price", "stop_loss_price"):
        if row.get(leg) is not None:
            asked += f", {leg.removesuffix('_price').replace('_', ' ')} {row[leg]}"
    filled = (
        f"filled {row['executed_qty']} @ {row['avg_price']}, fee {row['fee_usd']} "
        f"(exchange order {row['exchange_order_id']})"
    )
    yield from _events(
        row,
        ids,
        (3, "created_at", "executor", f"intent received: {asked}"),
        (4, "reservation_sent_at", "executor", "reservation asked of the ledger"),
        (
            6,
            "first_sent_at",
            "executor",
            f"order sent to {row['exchange']} {row['exchange_account']}, qty {row['order_qty']}",
        ),
        (9, "filled_at", "executor", filled),
    )
    if row["status"] != "filled":
        reason = row["skip_reason"] or row["exchange_code"] or ""
        detail = f": {reason} {row['detail']}".rstrip() if reason or row["detail"] else ""
        yield from _events(row, ids, (9, "updated_at", "executor", f"intent {row['status']}{detail}"))


def _preflight(row: dict[str, Any]) -> Iterator[Event]:
    what = "budget reserved" if row["outcome"] == "reserved" else f"preflight rejected: {row['reason']}"
    yield from _events(row, _ids(row, "intent_id", "bot_id"), (5, "created_at", "ledger", what))


def _waiting(row: dict[str, Any]) -> Iterator[Event]:
    what = "reservation waits for the open in flight on this symbol"
    yield from _events(row, _ids(row, "intent_id", "bot_id"), (5, "waiting_since", "ledger", what))


def _position(row: dict[str, Any]) -> Iterator[Event]:
    """A position row keeps its latest state: its opening, opening fill and close have their own times; a close
    is shown when the ledger recorded it (the venue's close time is in its text), after whatever reported it."""
    ids = _ids(row, "position_id", "open_intent_id", "close_intent_id")
    opening = f"position {row['side']} {row['symbol']} opening, ${row['requested_size_usd']} reserved"
    opened = f"position open: {row['executed_qty']} @ {row['avg_entry_price']}, ${row['size_usd']}"
    yield from _events(row, ids, (5, "created_at", "ledger", opening), (10, "opened_at", "ledger", opened))
    if row["status"] == "closed":
        closed = (
            f"position closed @ {row['close_price']}, pnl {row['realised_pnl_usd']}, fee {row['fee_usd']} "
            f"(close order {row['close_exchange_order_id']}, on the venue at {_time(row['closed_at'])})"
        )
        yield from _events(row, ids, (14, "updated_at", "ledger", closed))
    elif row["status"] in ("closing", "failed"):
        reason = f": {row['failure_reason']}" if row["failure_reason"] else ""
        yield from _events(row, ids, (12, "updated_at", "ledger", f"position {row['status']}{reason}"))


def _pending(row: dict[str, Any]) -> Iterator[Event]:
    ids = _ids(row, "intent_id", "client_order_id")
    source = "reconciler" if "pending_since" in row else "executor"
    yield from _events(
        row,
        ids,
        (
            8,
            "pending_since" if source == "reconciler" else "created_at",
            source,
            f"order outcome unknown: {row['cause']}",
        ),
        (
            13,
            "resolved_at",
            source,
            f"pending order resolved: {row['resolution']} (by {row.get('resolved_by') or '-'})",
        ),
    )


def _stop(row: dict[str, Any]) -> Iterator[Event]:
    ids = _ids(row, "intent_id", "client_algo_id")
    stop = f"{row['purpose'].replace('_', ' ')} {row['kind']} @ {row['trigger_price']}"
    yield from _events(row, ids, (11, "created_at", "executor", f"{stop} asked of the venue"))
    if row["status"] != "placing":
        algo = f" (algo {row['algo_id']})" if row["algo_id"] else ""
        yield from _events(row, ids, (13, "updated_at", "executor", f"{stop}: {row['status']}{algo}"))


def _paper_order(row: dict[str, Any]) -> Iterator[Event]:
    what = (
        f"paper venue: {row['order_type']} {row['side']} {row['status']} {row['executed_qty']}/{row['orig_qty']} "
        f"@ {row['avg_price']}, fee {row['fee_usd']} (order {row['order_id']})"
    )
    yield from _events(row, _ids(row, "client_order_id", "order_id"), (7, "created_at", "paper venue", what))


def _paper_trade(row: dict[str, Any]) -> Iterator[Event]:
    what = (
        f"paper venue: trade {row['qty']} @ {row['price']}, pnl {row['realised_pnl_usd']}, "
        f"commission {row['commission']} {row['commission_asset']}"
    )
    yield from _events(row, _ids(row, "order_id", "trade_id"), (8, "created_at", "paper venue", what))


def _paper_stop(row: dict[str, Any]) -> Iterator[Event]:
    ids = _ids(row, "client_algo_id", "algo_id", "spawned_order_id")
    placed = f"paper venue: {row['kind']} @ {row['trigger_price']} placed (algo {row['algo_id']})"
    yield from _events(row, ids, (11, "created_at", "paper venue", placed))
    if row["status"] != "NEW":
        spawned = f", spawned order {row['spawned_order_id']}" if row["spawned_order_id"] else ""
        yield from _events(
            row, ids, (13, "updated_at", "paper venue", f"paper venue: {row['kind']} {row['status']}{spawned}")
        )


def _order_fact(row: dict[str, Any]) -> Iterator[Event]:
    what = (
        f"fact: order {row['exchange_order_id']} {row['order_type']} {row['side']} {row['status']} "
        f"{row['executed_qty']}/{row['orig_qty']} @ {row['avg_price']}"
    )
    yield from _events(row, _ids(row, "client_order_id", "exchange_order_id"), (12, "event_time", "reconciler", what))


def _algo_fact(row: dict[str, Any]) -> Iterator[Event]:
    spawned = f", spawned order {row['spawned_order_id']}" if row["spawned_order_id"] else ""
    what = f"fact: algo {row['algo_id']} {row['order_type']} @ {row['trigger_price']} {row['status']}{spawned}"
    yield from _events(row, _ids(row, "client_algo_id", "algo_id"), (12, "event_time", "reconciler", what))


def _trade_fact(row: dict[str, Any]) -> Iterator[Event]:
    what = (
        f"fact: trade {row['trade_id']} {row['side']} {row['qty']} @ {row['price']}, pnl {row['realised_pnl_usd']}, "
        f"commission {row['commission']} {row['commission_asset']}"
    )
    yield from _events(row, _ids(row, "exchange_order_id", "trade_id"), (12, "event_time", "reconciler", what))


def _backfill(row: dict[str, Any]) -> Iterator[Event]:
    evidence = row["evidence"] if isinstance(row["evidence"], dict) else json.loads(row["evidence"] or "{}")
    what = f"closure backfilled ({evidence.get('route', 'closure')}), close order {row['close_exchange_order_id']}"
    yield from _events(row, _ids(row, "position_id", "close_exchange_order_id"), (13, "sent_at", "reconciler", what))


# Where each part of a path is kept, and how its rows read; every query takes the same named id lists.
SOURCES: Sequence[tuple[str, str, Any]] = (
    ("signal_router.signals", "signal_id = ANY(:s)", _signal),
    ("ledger.signal_journal", "signal_id = ANY(:s)", _journal),
    ("executor.intents", "intent_id = ANY(:i)", _intent),
    ("ledger.preflight_answers", "intent_id = ANY(:i)", _preflight),
    ("ledger.waiting_reservations", "intent_id = ANY(:i)", _waiting),
    ("ledger.positions", "position_id = ANY(:p)", _position),
    ("executor.pending_reconciliations", "intent_id = ANY(:i)", _pending),
    ("executor.stop_orders", "intent_id = ANY(:i)", _stop),
    ("executor.paper_orders", "client_order_id = ANY(:c) OR order_id::text = ANY(:e)", _paper_order),
    ("executor.paper_trades", "order_id::text = ANY(:e)", _paper_trade),
    ("executor.paper_stop_orders", "client_algo_id = ANY(:c)", _paper_stop),
    ("reconciler.order_facts", "client_order_id = ANY(:c) OR exchange_order_id = ANY(:e)", _order_fact),
    ("reconciler.algo_facts", "client_algo_id = ANY(:c)", _algo_fact),
    ("reconciler.trade_facts", "exchange_order_id = ANY(:e)", _trade_fact),
    ("reconciler.pending_orders", "intent_id = ANY(:i)", _pending),
    ("reconciler.backfills_sent", "position_id = ANY(:p)", _backfill),
)


# ---------------------------------------------------------------- the logs


def log_events(log_dir: Path, wanted: set[str]) -> Iterator[Event]:
    """The JSON lines of `log_dir/*.log` whose id fields name one of `wanted`; other lines are skipped."""
    for path in sorted(log_dir.glob("*.log")):
        with path.open(errors="replace") as lines:
            for line in lines:
                if not any(value in line for value in wanted):  # cheap before parsing: most lines are not ours
                    continue
                event = _log_event(line, path.stem, wanted)
                if event is not None:
                    yield event


def _log_event(line: str, file_service: str, wanted: set[str]) -> Event | None:
    try:
        record = json.loads(line)
        at = datetime.fromisoformat(record["timestamp"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(record, dict) or at.tzinfo is None:
        return None
    ids = {name: str(record[name]) for name in LOG_ID_FIELDS if record.get(name) is not None}
    if not wanted & set(ids.values()):
        return None
    level = record.get("level", "info")
    what = str(record.get("event", ""))
    if level not in ("info", "debug"):
        what = f"[{level}] {what}"
    extra = " ".join(f"{k}={v}" for k, v in record.items() if k not in LOG_SHOWN and v not in (None, ""))
    if extra:
        what += f" {extra[:160]}"
    return Event(at, f"{record.get('service') or file_service} log", what, ids)


# ---------------------------------------------------------------- printing


def render(trace_id: str, kind: str, ids: Ids, events: list[Event]) -> None:
    out.print(f"trace of {kind} {trace_id}: {len(events)} events")
    for name, values in (("signals", ids.signals), ("intents", ids.intents), ("positions", ids.positions)):
        known = sorted(str(v) for v in values if _appears(str(v), events))
        if known:
            out.print(f"{name}: {', '.join(known)}")
    out.print(
        table(
            None,
            ["time (UTC)", "source", "what happened", "ids"],
            [[_time(e.at), e.source, e.what, _short_ids(e.ids)] for e in events],
        )
    )


def _appears(value: str, events: list[Event]) -> bool:
    return any(value in e.ids.values() for e in events)


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _short_ids(ids: dict[str, str]) -> str:
    """A UUID's first characters, a client order id's prefix and first characters (the lines above name the
    full ids); a venue's numeric id whole, as its first characters are the same for every order."""
    return " ".join(f"{name.removesuffix('_id')} {_short(value)}" for name, value in ids.items())


def _short(value: str) -> str:
    if value.isdigit():
        return value
    return value[:12] if value[3:4] == "-" else value[:8]
