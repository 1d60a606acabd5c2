"""The signal router's Prometheus metrics, served by the runtime's metrics endpoint."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from egis_common.contracts import IntentKind, SignalSkipReason
from signal_router.reasons import RejectReason

SIGNALS_ACCEPTED = Counter("egis_gateway_signals_accepted_total", "Webhook signals durably published (answered 202)")
SIGNALS_REJECTED = Counter("egis_gateway_signals_rejected_total", "Webhook requests refused, by reason", ["reason"])
GATEWAY_SECONDS = Histogram(
    "egis_gateway_request_seconds",
    "Time from a webhook request's arrival at the handler to its answer, by outcome",
    ["outcome"],  # accepted | rejected | unavailable
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2),
)
SIGNALS_ROUTED = Counter("egis_router_intents_routed_total", "Order intents published, by intent", ["intent"])
SIGNALS_SKIPPED = Counter("egis_router_signals_skipped_total", "Signals skipped, by reason", ["reason"])
BOTS_KNOWN = Gauge("egis_router_bots_known", "Bots in the routing view, deleted ones included")

# Known labels start at 0, not as a missing series: a rate or an alert sees the first of each.
for _reason in RejectReason:
    SIGNALS_REJECTED.labels(_reason.value)
for _skip in SignalSkipReason:
    SIGNALS_SKIPPED.labels(_skip.value)
for _intent in IntentKind:
    SIGNALS_ROUTED.labels(_intent.value)
