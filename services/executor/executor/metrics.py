"""The executor's Prometheus metrics: orders by outcome, exchange latency, pending, skips, and the intents
on their way in each intermediate state."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from egis_common import contracts as c
from executor.adapters import repository as repo
from executor.domain import IN_FLIGHT, REFUSALS, RESOLVED_TO, Decision, skip_reasons
from executor.domain import IntentStatus as S

ORDERS = Counter(
    "egis_executor_orders_total",
    "Entry orders by outcome (filled, rejected, unknown) and exchange code",
    ["exchange", "outcome", "code"],
)
EXCHANGE_SECONDS = Histogram(
    "egis_executor_exchange_seconds",
    "Time an exchange call took, by exchange and operation",
    ["exchange", "operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PENDING = Gauge("egis_executor_pending_reconciliation", "Orders whose outcome is unknown, awaiting reconciliation")
IN_FLIGHT_INTENTS = Gauge("egis_executor_intents_in_flight", "Intents in an intermediate state, by state", ["state"])
IN_FLIGHT_OLDEST = Gauge(
    "egis_executor_intents_in_flight_oldest_age_seconds",
    "How long the oldest intent in each intermediate state has been in it; 0 when there is none",
    ["state"],
)
for _state in IN_FLIGHT:  # a state with nothing in it is a 0, not a missing series
    IN_FLIGHT_INTENTS.labels(_state.value).set(0)
    IN_FLIGHT_OLDEST.labels(_state.value).set(0)
RESERVATIONS_RESENT = Counter(
    "egis_executor_reservations_resent_total", "Reservations asked of the ledger again, no answer having come"
)
CLOSE_RESENDS = Counter(
    "egis_executor_close_resends_total",
    "Closes sent again after the venue did not execute them, by exchange and the attempt's outcome "
    "(filled, rejected, unknown, not_executed: to be sent again)",
    ["exchange", "outcome"],
)
RESOLUTIONS = Counter(
    "egis_executor_resolutions_recorded_total", "Pending orders the reconciler settled, by resolution", ["resolution"]
)
SKIPPED = Counter(
    "egis_executor_intents_skipped_total", "Intents that never reached an exchange, by reason", ["reason"]
)
REFUSED = Counter(
    "egis_executor_intents_refused_total",
    "Intents refused before any reservation because their bot, as the bots topic states it, does not back them "
    "(unknown_bot, bot_deleted, account_mismatch); each is also a skip",
    ["reason"],
)
for _reason in skip_reasons():
    SKIPPED.labels(_reason)
for _reason in REFUSALS:  # no refusal yet is a 0, not a missing series: an alert on it needs the series
    REFUSED.labels(_reason.value)
BOTS_KNOWN = Gauge("egis_executor_bots_known", "Bots in the executor's view of the bots topic")

_OUTCOMES = {
    S.FILLED: "filled",
    S.REJECTED: "rejected",
    S.PENDING_RECONCILIATION: "unknown",
    S.RESEND_DUE: "not_executed",
}
# Known labels start at 0; a rejection's series is made by its exchange code, which no list holds.
for _exchange in c.ExchangeName:
    for _status, _outcome in _OUTCOMES.items():
        if _status is not S.REJECTED:
            ORDERS.labels(_exchange.value, _outcome, "")
        CLOSE_RESENDS.labels(_exchange.value, _outcome)
for _resolution in (*RESOLVED_TO, "other"):
    RESOLUTIONS.labels(_resolution)


def count(made: Iterable[Decision]) -> None:
    """Count what a batch of decisions concluded; decisions that changed nothing count nothing."""
    for decision in made:
        intent = decision.intent
        if intent is None:
            continue
        if intent.status is S.SKIPPED:
            SKIPPED.labels(intent.skip_reason).inc()
        elif intent.status in _OUTCOMES:
            ORDERS.labels(intent.exchange.value, _OUTCOMES[intent.status], intent.exchange_code or "").inc()


def count_refusals(made: Iterable[Decision]) -> None:
    """Intents refused because their bot does not back them (`domain.refusal`)."""
    for decision in made:
        REFUSED.labels(decision.intent.skip_reason).inc()


def count_resends(made: Iterable[Decision]) -> None:
    """The outcomes of closes sent again; each also counts as an order (`count`)."""
    for decision in made:
        if decision.intent is not None and decision.intent.status in _OUTCOMES:
            CLOSE_RESENDS.labels(decision.intent.exchange.value, _OUTCOMES[decision.intent.status]).inc()


def count_resolutions(made: Iterable[Decision]) -> None:
    """Resolutions recorded now; one already recorded (a repeat, a later one) counts nothing."""
    for decision in made:
        if decision.resolved is not None:
            known = decision.resolved.resolution in RESOLVED_TO
            RESOLUTIONS.labels(decision.resolved.resolution if known else "other").inc()


async def refresh_gauges(engine: AsyncEngine) -> None:
    """Periodic: the unresolved pending orders, and the count and oldest age of every intermediate state."""
    async with engine.connect() as conn:
        PENDING.set(await repo.unresolved_pending(conn))
        found = await repo.in_flight(conn)
    for state in IN_FLIGHT:
        count, oldest_s = found.get(state, (0, 0.0))
        IN_FLIGHT_INTENTS.labels(state.value).set(count)
        IN_FLIGHT_OLDEST.labels(state.value).set(oldest_s)
