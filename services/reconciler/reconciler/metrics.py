"""The reconciler's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from reconciler.adapters.repository import FACT_TABLES
from reconciler.domain import AUTO, SETTLING, Backlog

FACTS_INGESTED = Counter(
    "egis_reconciler_facts_ingested_total",
    "Exchange facts stored, by table and outcome (new or replayed)",
    ["table", "outcome"],
)
CLOSURES_BACKFILLED = Counter(
    "egis_reconciler_closures_backfilled_total", "Backfill commands sent to the ledger", ["route"]
)
REPAIR_RUNS = Counter(
    "egis_reconciler_repair_runs_total", "Admin commands by command and outcome", ["command", "outcome"]
)
DRIFT = Gauge("egis_reconciler_drift_positions", "Positions in drift at the last drift report, by kind", ["kind"])
PENDING_BY_AGE = Gauge("egis_reconciler_pending_orders", "Unsettled pending orders, by age", ["age"])
PENDING_UNRESOLVED = Gauge("egis_reconciler_pending_unresolved", "Unsettled pending orders")
PENDING_OLDEST_AGE = Gauge(
    "egis_reconciler_pending_oldest_age_seconds", "Age of the oldest unsettled pending order (0 when there is none)"
)
PENDING_ESCALATED = Gauge(
    "egis_reconciler_pending_escalated",
    "Unsettled pending orders older than EGIS_PENDING_ESCALATE_AFTER_SECONDS: for a person",
)
PENDING_SETTLED = Counter(
    "egis_reconciler_pending_settled_total",
    "Pending orders settled from the venue's answer",
    ["resolved_by", "resolution"],
)

# Known labels start at 0, not as a missing series: the routes of a backfill and the outcomes of a repair run
# are not listed anywhere, so those series are made by their first count.
for _table in FACT_TABLES.values():
    for _outcome in ("new", "replayed"):
        FACTS_INGESTED.labels(_table.name, _outcome)
for _by in (AUTO, "operator"):
    for _resolution in SETTLING:
        PENDING_SETTLED.labels(_by, _resolution.value)


def show_pending(backlog: Backlog) -> None:
    """The whole system's backlog of pending orders (never one bot's)."""
    for age, count in backlog.by_age.items():
        PENDING_BY_AGE.labels(age).set(count)
    PENDING_UNRESOLVED.set(backlog.count)
    PENDING_OLDEST_AGE.set(backlog.oldest_age_s)
    PENDING_ESCALATED.set(backlog.escalated)


def count_facts(received: dict[str, int], inserted: dict[str, int]) -> None:
    for table, count in received.items():
        new = inserted.get(table, 0)
        FACTS_INGESTED.labels(table, "new").inc(new)
        FACTS_INGESTED.labels(table, "replayed").inc(count - new)
