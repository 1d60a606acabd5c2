"""What a look-up by client order id means for a pending order. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from egis_common import contracts as c
from executor.exchange import Filled, NotFound, Rejected, Unknown
from reconciler.resolution import PendingOrder, Resolution, age_bucket, decide

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=2)


def pending(minutes_ago: float) -> PendingOrder:
    return PendingOrder(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "open", "ETHUSDT", "ego-x", "binance_usdm", "acct",
                        "timeout", NOW - timedelta(minutes=minutes_ago))


def test_not_found_releases_only_after_the_exchanges_window():
    order = pending(5)
    decision = decide(order, NotFound(), NOW, WINDOW)
    assert decision.resolution is Resolution.NOT_FOUND_AFTER_WINDOW
    assert isinstance(decision.command, c.ReleaseReservation)
    assert (decision.command.intent_id, decision.command.bot_id, decision.command.reason) == (
        order.intent_id, order.bot_id, "not_found_after_window")
    assert decision.command.evidence == decision.evidence and decision.evidence["pending_for_s"] == "300.0"
    early = decide(pending(1), NotFound(), NOW, WINDOW)
    assert (early.resolution, early.command) == (Resolution.NOT_FOUND_WITHIN_WINDOW, None)


def test_a_rejection_releases_and_unknown_or_filled_never_do():
    rejected = decide(pending(0), Rejected("-2019", "margin"), NOW, WINDOW)
    assert rejected.command.reason == "rejected_by_exchange" and rejected.evidence["exchange_code"] == "-2019"
    unknown = decide(pending(60), Unknown("http_503"), NOW, WINDOW)
    assert (unknown.resolution, unknown.command, unknown.evidence["lookup_cause"]) == (
        Resolution.STILL_UNKNOWN, None, "http_503")
    fill = Filled("42", Decimal("0.01"), Decimal(3000), Decimal("0.012"), NOW)
    filled = decide(pending(60), fill, NOW, WINDOW)
    assert (filled.resolution, filled.evidence["exchange_order_id"]) == (Resolution.FOUND_FILLED, "42")
    found = filled.command
    assert isinstance(found, c.ApplyFoundFill)
    assert (found.exchange_order_id, found.executed_qty, found.avg_price, found.fee_usd) == (
        "42", Decimal("0.01"), Decimal(3000), Decimal("0.012"))
    assert found.evidence == filled.evidence


@pytest.mark.parametrize("minutes,bucket", [(0, "under_1m"), (1, "1m_to_10m"), (59, "10m_to_1h"), (60, "over_1h")])
def test_pending_age_buckets(minutes, bucket):
    assert age_bucket(NOW - timedelta(minutes=minutes), NOW) == bucket
