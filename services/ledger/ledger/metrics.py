"""The ledger's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from egis_common import contracts as c
from ledger import domain
from ledger import repository as repo
from ledger.domain import Outcome, PositionStatus

PREFLIGHT_DECISIONS = Counter(
    "egis_ledger_preflight_decisions_total", "Preflight answers by outcome and reason", ["outcome", "reason"]
)
for _reason in c.PreflightRejectReason:  # a reason never given yet is a 0, not a missing series
    PREFLIGHT_DECISIONS.labels("rejected", _reason.value)
PREFLIGHT_DECISIONS.labels("reserved", "")
CLAIMS_REFUSED = Counter(
    "egis_ledger_claims_refused_total",
    "Backfills and found fills refused because they match no position (or intent) the ledger holds, by command "
    "and reason",
    ["command", "reason"],
)
for _command in (c.BackfillClosure, c.ApplyFoundFill):
    for _claim in domain.ClaimRefusal:
        CLAIMS_REFUSED.labels(_command.__name__, _claim.value)
OPEN_POSITIONS = Gauge("egis_ledger_open_positions", "Open and closing positions per bot", ["bot_id"])
AVAILABLE_BUDGET = Gauge("egis_ledger_available_budget_usd", "Available budget per bot (USD)", ["bot_id"])
WAITING = Gauge("egis_ledger_waiting_reservations", "Reservations waiting behind an order in flight")
OLDEST_WAITING = Gauge(
    "egis_ledger_oldest_waiting_reservation_seconds",
    "Age of the oldest reservation waiting behind an order in flight (0 when none)",
)


def count_preflight(outcome: Outcome) -> None:
    if outcome.rejection is not None:
        PREFLIGHT_DECISIONS.labels("rejected", outcome.rejection.value).inc()
    elif outcome.created or outcome.positions:
        PREFLIGHT_DECISIONS.labels("reserved", "").inc()


def count_refused_claim(message: c.Message, reason: domain.ClaimRefusal) -> None:
    CLAIMS_REFUSED.labels(type(message).__name__, reason.value).inc()


def show_waiting(count: int, oldest_seconds: float) -> None:
    WAITING.set(count)
    OLDEST_WAITING.set(oldest_seconds)


def show_budgets(outcomes) -> None:
    """Every BudgetChanged a batch produced, onto the available-budget gauge at once (the refresh corrects the rest)."""
    for outcome in outcomes:
        for message in outcome.messages:
            if isinstance(message, c.BudgetChanged):
                AVAILABLE_BUDGET.labels(str(message.bot_id)).set(float(message.available_usd))  # for people only


_shown: set[str] = set()


async def refresh_bot_gauges(engine: AsyncEngine) -> None:
    """Per-bot gauges from the database, through the one budget function; deleted bots drop out."""
    async with engine.connect() as conn:
        bots = await repo.live_bots_with_active_positions(conn)
    current = set()
    for bot, positions in bots:
        label = str(bot.bot_id)
        current.add(label)
        budget = domain.compute_budget(bot.initial_budget_usd, positions)
        OPEN_POSITIONS.labels(label).set(sum(p.status is not PositionStatus.OPENING for p in positions))
        AVAILABLE_BUDGET.labels(label).set(float(budget.available_usd))  # a gauge for people; the ledger never reads it
    for gone in _shown - current:
        OPEN_POSITIONS.remove(gone)
        AVAILABLE_BUDGET.remove(gone)
    _shown.clear()
    _shown.update(current)
