"""The reconciler's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FACTS_INGESTED = Counter(
    "egis_reconciler_facts_ingested_total", "Exchange facts stored, by table and outcome (new or replayed)",
    ["table", "outcome"],
)
CLOSURES_BACKFILLED = Counter(
    "egis_reconciler_closures_backfilled_total", "Backfill commands sent to the ledger", ["route"]
)
REPAIR_RUNS = Counter(
    "egis_reconciler_repair_runs_total", "Admin commands by command and outcome", ["command", "outcome"]
)
DRIFT = Gauge("egis_reconciler_drift_positions", "Positions in drift at the last drift report, by kind", ["kind"])
PENDING_BY_AGE = Gauge("egis_reconciler_pending_orders", "Unsettled pending orders at the last drift report, by age",
                       ["age"])


def count_facts(received: dict[str, int], inserted: dict[str, int]) -> None:
    for table, count in received.items():
        new = inserted.get(table, 0)
        FACTS_INGESTED.labels(table, "new").inc(new)
        FACTS_INGESTED.labels(table, "replayed").inc(count - new)
