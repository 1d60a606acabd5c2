"""The ledger's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from ledger.domain import Outcome

PREFLIGHT_DECISIONS = Counter(
    "egis_ledger_preflight_decisions_total", "Preflight answers by outcome and reason", ["outcome", "reason"]
)
OPEN_POSITIONS = Gauge("egis_ledger_open_positions", "Open and closing positions per bot", ["bot_id"])
AVAILABLE_BUDGET = Gauge("egis_ledger_available_budget_usd", "Available budget per bot (USD)", ["bot_id"])


def count_preflight(outcome: Outcome) -> None:
    if outcome.rejection is not None:
        PREFLIGHT_DECISIONS.labels("rejected", outcome.rejection.value).inc()
    elif outcome.created or outcome.positions:
        PREFLIGHT_DECISIONS.labels("reserved", "").inc()


def set_bot_gauges(bot_id: str, open_positions: int, available_usd) -> None:
    OPEN_POSITIONS.labels(bot_id).set(open_positions)
    AVAILABLE_BUDGET.labels(bot_id).set(float(available_usd))  # a gauge, read by people, never by the ledger
