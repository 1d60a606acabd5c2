"""The executor's metrics count orders by outcome, skips by reason, exchange latency and pending orders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from executor_helpers import intent_in, open_intent, publish
from prometheus_client import REGISTRY

from egis_common.contracts import ExchangeName
from executor.metrics import refresh_pending

pytestmark = pytest.mark.infra


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_orders_skips_latency_and_pending_are_measured(executor, producer, make_bot):
    filled_before = sample("egis_executor_orders_total", exchange="paper", outcome="filled", code="")
    skipped_before = sample("egis_executor_intents_skipped_total", reason="insufficient_budget")
    calls_before = sample("egis_executor_exchange_seconds_count", exchange="paper", operation="place_market_order")
    await executor.paper.set_mark_price("ETHUSDT", Decimal("2942.67"))
    rich, poor = await make_bot("100"), await make_bot("5")
    filled, skipped = open_intent(rich), open_intent(poor)
    await publish(producer, filled, skipped)
    await intent_in(executor.engine, filled.intent_id, "filled")
    await intent_in(executor.engine, skipped.intent_id, "skipped")
    assert sample("egis_executor_orders_total", exchange="paper", outcome="filled", code="") == filled_before + 1
    assert sample("egis_executor_intents_skipped_total", reason="insufficient_budget") == skipped_before + 1
    assert sample("egis_executor_exchange_seconds_count", exchange="paper",
                  operation="place_market_order") == calls_before + 1
    await refresh_pending(executor.engine)
    async with executor.engine.connect() as conn:
        from executor import repository as repo

        assert sample("egis_executor_pending_reconciliation") == await repo.unresolved_pending(conn)
    assert ExchangeName.PAPER in executor.wiring.exchanges
