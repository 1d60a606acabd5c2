"""`egis trace` against the whole system as `./egis up` runs it (Kafka with logins and ACLs, Postgres, the four
services as processes writing their JSON logs): a buy signal with a take-profit through the gateway, the paper venue
triggers the take-profit, the reconciler backfills the closure; the trace from the signal id, the position id and
the client order id is that whole path in time order; an id found nowhere is one line and exit 1."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from egis_localinfra.testing import eventually

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "deploy" / "local" / "tests"))  # driving `egis-local` as an operator's shell would
from cli_helpers import clean_env, egis, one_line_error, table_rows  # noqa: E402
from local_system import new_bot, positions, post_signal, run_cli  # noqa: E402

pytestmark = [pytest.mark.infra, pytest.mark.timeout(600)]
SYMBOL = "ETHUSDT"
# The path of an open closed by its take-profit, in the order it happens: (source, the start of what happened).
PATH = [
    ("gateway", "webhook accepted"),
    ("signal_router", "routed to intent"),
    ("executor", "intent received: open long ETHUSDT, $10 requested, take profit 3000"),
    ("ledger", "budget reserved"),
    ("ledger", "position long ETHUSDT opening, $10 reserved"),
    ("executor", "order sent to paper"),
    ("paper venue", "MARKET BUY FILLED 0.003/0.003 @ 2942.67"),
    ("executor", "filled 0.003 @ 2942.67"),
    ("ledger", "position open: 0.003 @ 2942.67, $8.82801"),
    ("executor", "take profit TAKE_PROFIT_MARKET @ 3000 asked of the venue"),
    ("paper venue", "TAKE_PROFIT_MARKET @ 3000 placed"),
    ("paper venue", "TAKE_PROFIT_MARKET SELL FILLED 0.003/0.003 @ 3050"),
    ("reconciler", "SELL 0.003 @ 3050"),  # the trade that closed it
    ("reconciler", "closure backfilled (take_profit:algo"),
    ("ledger", "position closed @ 3050"),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[Path]:
    """The whole system from `egis-local up` in a state directory of its own; `down` afterwards."""
    state_dir = tmp_path_factory.mktemp("trace") / "local"
    up = run_cli(state_dir, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield state_dir
    finally:
        down = run_cli(state_dir, "down")
        assert down.returncode == 0, down.stdout + down.stderr


def mark(system: Path, price: str) -> None:
    marked = run_cli(system, "mark-price", SYMBOL, price)
    assert marked.returncode == 0, marked.stdout + marked.stderr


async def position_in(system: Path, token: str, bot_id: str, status: str) -> dict:
    async def found() -> list[dict]:
        return [p for p in positions(system, token, bot_id) if p["status"] == status]

    [position] = await eventually(found, timeout=90, interval=0.5, what=f"the position {status}")
    return position


async def take_profit_closure(system: Path) -> tuple[str, dict]:
    """A paper bot's buy with a take-profit at 3000, opened at 2942.67, closed when the mark reaches 3050."""
    key = f"trace-{uuid.uuid4().hex[:8]}"
    token, bot_id, secret = new_bot(system, key)
    mark(system, "2942.67")
    body = {"signal_key": key, "secret": secret, "symbol": SYMBOL, "action": "buy", "take_profit_price": "3000"}
    deadline = time.monotonic() + 30
    while (sent := post_signal(system, body))[0] != 202:  # the gateway learns the new bot first
        assert time.monotonic() < deadline, sent
        await asyncio.sleep(0.5)
    await position_in(system, token, bot_id, "open")
    mark(system, "3050")
    return sent[1]["signal_id"], await position_in(system, token, bot_id, "closed")


def where(events: list[dict], source: str, what: str) -> int:
    found = [n for n, e in enumerate(events) if e["source"] == source and what in e["what"]]
    assert found, f"no {source}: {what}... in\n" + "\n".join(f"{e['source']}: {e['what']}" for e in events)
    return found[0]


def from_the_databases(events: list[dict]) -> list[dict]:
    return [e for e in events if not e["source"].endswith(" log")]


async def test_a_signal_is_traced_from_its_webhook_to_the_closure_the_reconciler_backfilled(system, tmp_path):
    signal_id, position = await take_profit_closure(system)
    env = clean_env(system)  # the database and the logs are the ones the local env file and state directory name

    traced = await egis("trace", signal_id, "--json", env=env)
    assert traced.code == 0, traced
    events = json.loads(traced.out)
    steps = [where(events, source, what) for source, what in PATH]
    assert steps == sorted(steps), [events[n]["what"] for n in steps]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    opened = events[where(events, "ledger", "position open")]
    assert opened["ids"]["position_id"] == position["position_id"]
    sent = events[where(events, "executor", "order sent to paper")]
    assert sent["ids"]["signal_id"] == signal_id
    # The services' own lines about the signal, its intent and its position, among the rows.
    logged = {e["source"] for e in events if e["source"].endswith(" log")}
    assert {"signal_router log", "executor log", "ledger log", "reconciler log"} <= logged, logged

    for other_id in (position["position_id"], sent["ids"]["client_order_id"]):
        again = await egis("trace", other_id, "--json", env=env)
        assert again.code == 0, again
        assert from_the_databases(json.loads(again.out)) == from_the_databases(events), other_id

    elsewhere = await egis("trace", signal_id, "--json", "--logs", str(tmp_path), env=env)  # no log files there
    assert json.loads(elsewhere.out) == from_the_databases(events)

    shown = await egis("trace", position["position_id"], env=env)
    assert shown.code == 0, shown
    assert f"trace of position {position['position_id']}" in shown.out
    assert f"signals: {signal_id}" in shown.out
    rows = table_rows(shown.out)
    assert rows[0] == ["time (UTC)", "source", "what happened", "ids"]
    whats = [row[2] for row in rows[1:]]
    assert whats[0].startswith("webhook accepted") and any(w.startswith("position closed @ 3050") for w in whats)


async def test_an_id_found_nowhere_is_one_line_and_exit_1(system):
    for unknown in (str(uuid.uuid4()), "ego-00000000000000000000000000000000"):
        done = await egis("trace", unknown, env=clean_env(system))
        assert "no signal, position or client order with this id" in one_line_error(done, 1)


async def test_no_database_is_one_line_and_exit_3(tmp_path):
    env = clean_env(tmp_path, EGIS_DATABASE_URL="postgresql+asyncpg://egis:x@127.0.0.1:9/egis")
    done = await egis("trace", str(uuid.uuid4()), env=env)
    assert "cannot reach the database at 127.0.0.1:9" in one_line_error(done, 3)
