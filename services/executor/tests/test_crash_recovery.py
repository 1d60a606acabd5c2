"""The executor as its own process, SIGKILLed between the exchange call and the commit of its outcome.

The failpoint `executor.after_exchange_call` (`EGIS_FAILPOINTS`, egis_common.failpoints)
makes the process kill itself right after the paper venue committed the order. After a restart the
ledger's answer comes again; the intent is found `submitting`, so the order may
exist: it goes to reconciliation, and the exchange is not called again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from executor_helpers import intent_in, of, open_intent, paper_orders, pending_record, positions, publish, rows

from egis_common import contracts as c
from egis_localinfra.cli import wait_for_metrics
from egis_localinfra.ports import free_port
from egis_localinfra.pytest_plugin import service_env
from egis_localinfra.testing import eventually
from egis_venues.paper import tables as paper

pytestmark = pytest.mark.infra
D = Decimal


@contextmanager
def executor_process(log: Path, **env: str) -> Iterator[subprocess.Popen]:
    port = free_port()
    environment = {
        **os.environ,
        "EGIS_METRICS_PORT": str(port),
        "EGIS_LOG_LEVEL": "WARNING",
        "EGIS_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        **service_env("executor"),
        **env,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "executor.main"], env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_metrics("executor", port, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


async def test_a_kill_between_the_exchange_call_and_the_commit_never_orders_twice(
    ledger_runtime, producer, make_bot, tail, tmp_path
):
    engine = ledger_runtime.engine  # the tables are schema-qualified: any engine on the database reads them
    bot = await make_bot("100")
    symbol_mark = c.MarkPrice(symbol="ETHUSDT", price=D("2942.67"))
    intent = open_intent(bot)
    log = tmp_path / "executor.log"
    with executor_process(log, EGIS_FAILPOINTS="executor.after_exchange_call=kill") as doomed:
        await publish(producer, symbol_mark)
        await eventually(
            lambda: rows(engine, paper.marks.select().where(paper.marks.c.price == D("2942.67"))),
            what="the mark price in the paper venue",
        )
        await publish(producer, intent)
        await eventually(lambda: _exited(doomed), timeout=60, what="the executor killing itself")
        assert doomed.returncode == -signal.SIGKILL
    row = await intent_in(engine, intent.intent_id, "submitting")
    (order,) = await paper_orders(engine, bot.exchange_account)  # the venue committed the order
    assert order.client_order_id == row.client_order_id

    with executor_process(log):
        await intent_in(engine, intent.intent_id, "pending_reconciliation", timeout=60)
        (message,) = await tail.wait_for(of(c.OrderPendingReconciliation, intent_id=intent.intent_id))
    assert message.cause == "interrupted_during_submission" and message.client_order_id == order.client_order_id
    assert (await pending_record(engine, intent.intent_id)).client_order_id == order.client_order_id
    assert len(await paper_orders(engine, bot.exchange_account)) == 1
    assert [p.status for p in await positions(engine, bot.bot_id)] == ["opening"]  # the reservation is held


async def _exited(process: subprocess.Popen) -> bool:
    return process.poll() is not None
