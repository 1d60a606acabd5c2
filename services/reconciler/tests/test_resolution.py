"""What a look-up by client order id means for a pending order. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from egis_common import contracts as c
from egis_venues.port import Filled, NotFound, Rejected, Unknown
from reconciler.domain import (
    NotFoundWindows,
    PendingOrder,
    Resolution,
    age_bucket,
    backlog,
    decide,
    look_up_backoff,
    next_look_up,
    operator,
    pending_drift,
    recorded,
    retry_wait,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=2)


def pending(minutes_ago: float, exchange: str = "binance_usdm", not_after: datetime | None = None) -> PendingOrder:
    return PendingOrder(
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        "open",
        "ETHUSDT",
        "ego-x",
        exchange,
        "acct",
        "timeout",
        NOW - timedelta(minutes=minutes_ago),
        not_after=not_after,
    )


def test_not_found_releases_only_after_the_exchanges_window():
    order = pending(5)
    decision = decide(order, NotFound(), NOW, WINDOW)
    assert decision.resolution is Resolution.NOT_FOUND_AFTER_WINDOW
    assert isinstance(decision.command, c.ReleaseReservation)
    assert (decision.command.intent_id, decision.command.bot_id, decision.command.reason) == (
        order.intent_id,
        order.bot_id,
        "not_found_after_window",
    )
    assert decision.command.evidence == decision.evidence and decision.evidence["pending_for_s"] == "300.0"
    early = decide(pending(1), NotFound(), NOW, WINDOW)
    assert (early.resolution, early.command) == (Resolution.NOT_FOUND_WITHIN_WINDOW, None)


def test_a_close_not_found_after_the_window_settles_but_leaves_its_reservation_to_the_executor():
    """The executor sends that close again (the venue never got it) and tells the ledger how it ends."""
    from dataclasses import replace

    order = replace(pending(5), intent="close")
    decision = decide(order, NotFound(), NOW, WINDOW)
    assert (decision.resolution, decision.command, decision.settles) == (Resolution.NOT_FOUND_AFTER_WINDOW, None, True)
    assert recorded(order, decision, "auto", NOW).resolution == "not_found_after_window"
    assert not decide(replace(pending(1), intent="close"), NotFound(), NOW, WINDOW).settles


def test_a_rejection_releases_and_unknown_or_filled_never_do():
    rejected = decide(pending(0), Rejected("-2019", "margin"), NOW, WINDOW)
    assert rejected.command.reason == "rejected_by_exchange" and rejected.evidence["exchange_code"] == "-2019"
    unknown = decide(pending(60), Unknown("http_503"), NOW, WINDOW)
    assert (unknown.resolution, unknown.command, unknown.evidence["lookup_cause"]) == (
        Resolution.STILL_UNKNOWN,
        None,
        "http_503",
    )
    fill = Filled("42", Decimal("0.01"), Decimal(3000), Decimal("0.012"), NOW)
    filled = decide(pending(60), fill, NOW, WINDOW)
    assert (filled.resolution, filled.evidence["exchange_order_id"]) == (Resolution.FOUND_FILLED, "42")
    found = filled.command
    assert isinstance(found, c.ApplyFoundFill)
    assert (found.exchange_order_id, found.executed_qty, found.avg_price, found.fee_usd) == (
        "42",
        Decimal("0.01"),
        Decimal(3000),
        Decimal("0.012"),
    )
    assert found.evidence == filled.evidence


@pytest.mark.parametrize("minutes,bucket", [(0, "under_1m"), (1, "1m_to_10m"), (59, "10m_to_1h"), (60, "over_1h")])
def test_pending_age_buckets(minutes, bucket):
    assert age_bucket(NOW - timedelta(minutes=minutes), NOW) == bucket


def test_a_settlement_is_recorded_for_the_executor_with_who_settled_it_when_and_on_what_evidence():
    order = pending(5)
    decision = decide(order, NotFound(), NOW, WINDOW)
    record = recorded(order, decision, operator("alice"), NOW)
    assert (record.intent_id, record.bot_id, record.resolution, record.resolved_by, record.resolved_at) == (
        order.intent_id,
        order.bot_id,
        "not_found_after_window",
        "operator:alice",
        NOW,
    )
    assert record.evidence == decision.evidence


def test_look_ups_back_off_in_a_random_window_that_doubles_up_to_the_cap():
    wait = retry_wait(5, 300)
    assert wait(1) == timedelta(seconds=5)  # the first window is exactly the initial wait
    for attempt, widest in [(2, 10), (3, 20), (6, 160), (7, 300), (40, 300)]:
        waits = [wait(attempt) for _ in range(200)]
        assert all(timedelta(seconds=5) <= w <= timedelta(seconds=widest) for w in waits)
        assert len(set(waits)) > 100  # jittered: orders that went pending together spread out
    # An order pending for a day has been asked about at least every five minutes: far inside Binance's 3 days.
    assert max(wait(n) for n in range(1, 1000)) <= timedelta(minutes=5)


def test_the_backlog_counts_ages_and_escalates_past_the_limit():
    since = [NOW - timedelta(minutes=m) for m in (0.5, 30, 61, 180)]
    found = backlog(since, NOW, timedelta(hours=1))
    assert (found.count, found.oldest_age_s, found.escalated) == (4, 180 * 60, 2)
    assert found.by_age == {"under_1m": 1, "1m_to_10m": 0, "10m_to_1h": 1, "over_1h": 2}
    empty = backlog([], NOW, timedelta(hours=1))
    assert (empty.count, empty.oldest_age_s, empty.escalated) == (0, 0.0, 0)


def test_only_pending_orders_past_the_limit_are_drift_and_each_says_how_to_find_it():
    old, young = pending(90), pending(10)
    [drift] = pending_drift([old, young], NOW, timedelta(hours=1))
    line = drift.as_report()
    assert (line["kind"], line["position_id"], line["intent_id"], line["client_order_id"], line["pending_for_s"]) == (
        "pending_unresolved",
        str(old.position_id),
        str(old.intent_id),
        "ego-x",
        "5400.0",
    )
    assert (line["exchange"], line["exchange_account"], line["symbol"]) == ("binance_usdm", "acct", "ETHUSDT")


def test_each_venue_has_its_own_not_found_window():
    windows = NotFoundWindows(remote=timedelta(seconds=60), paper=timedelta(seconds=20))
    assert windows.of("paper") == timedelta(seconds=20)
    assert windows.of("binance_usdm") == timedelta(seconds=60)


def test_the_next_look_up_comes_just_after_the_window_when_the_backoff_would_wait_longer():
    order = pending(0.5)  # pending for 30 s of a 60 s window
    window = timedelta(seconds=60)
    assert next_look_up(order, NOW, timedelta(seconds=5), window) == NOW + timedelta(seconds=5)
    assert next_look_up(order, NOW, timedelta(seconds=90), window) == order.pending_since + window + timedelta(
        seconds=1
    )
    late = pending(5)  # its window is long over: the backoff alone
    assert next_look_up(late, NOW, timedelta(seconds=90), window) == NOW + timedelta(seconds=90)


def test_a_final_not_found_settles_at_once_without_the_window_and_a_close_is_left_to_the_executor():
    from dataclasses import replace

    order = pending(0, "paper", not_after=NOW - timedelta(seconds=1))  # pending for no time of a 2 min window
    decision = decide(order, NotFound(final=True), NOW, WINDOW)
    assert (decision.resolution, decision.settles) == (Resolution.NOT_FOUND_AFTER_WINDOW, True)
    assert (decision.evidence["not_found"], decision.evidence["not_after"]) == ("final", order.not_after.isoformat())
    assert "window_s" not in decision.evidence
    assert isinstance(decision.command, c.ReleaseReservation) and decision.command.reason == "not_found_after_window"
    close = decide(replace(order, intent="close"), NotFound(final=True), NOW, WINDOW)
    assert (close.settles, close.command) == (True, None)  # the executor sends that close again
    not_final = decide(order, NotFound(), NOW, WINDOW)
    assert (not_final.resolution, not_final.settles) == (Resolution.NOT_FOUND_WITHIN_WINDOW, False)


def test_the_next_look_up_comes_just_after_not_after_when_that_is_sooner_than_the_backoff():
    order = pending(0, "paper", not_after=NOW + timedelta(seconds=3))
    window, grace = timedelta(seconds=20), timedelta(seconds=1)
    assert next_look_up(order, NOW, timedelta(seconds=5), window) == order.not_after + grace
    assert next_look_up(order, NOW, timedelta(seconds=2), window) == NOW + timedelta(seconds=2)
    passed = pending(0, "paper", not_after=NOW - timedelta(seconds=3))  # past: the backoff or the window
    assert next_look_up(passed, NOW, timedelta(seconds=5), window) == NOW + timedelta(seconds=5)
    assert next_look_up(passed, NOW, timedelta(seconds=90), window) == passed.pending_since + window + grace
    older = pending(0, "paper")  # no not_after: as before
    assert next_look_up(older, NOW, timedelta(seconds=90), window) == older.pending_since + window + grace


def test_a_paper_look_up_waits_at_most_the_run_interval_and_a_remote_one_its_backoff():
    run_interval, long_wait = timedelta(seconds=5), timedelta(seconds=160)
    assert look_up_backoff(pending(3, "paper"), long_wait, run_interval) == run_interval
    assert look_up_backoff(pending(3, "paper"), timedelta(seconds=2), run_interval) == timedelta(seconds=2)
    assert look_up_backoff(pending(3, "binance_usdm"), long_wait, run_interval) == long_wait
