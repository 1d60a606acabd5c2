"""The gateway's metrics of the signal journal (kept apart from `metrics` while that module changes elsewhere).

`egis_gateway_request_seconds` (metrics.GATEWAY_SECONDS) has the outcome `duplicate` too.
"""

from __future__ import annotations

from prometheus_client import Counter

SIGNALS_DUPLICATE = Counter(
    "egis_gateway_signals_duplicate_total", "Webhook signals answered as duplicates of a decided one (200)"
)
JOURNAL_DROPPED = Counter(
    "egis_gateway_journal_dropped_total", "Journal entries of refused or duplicate posts that Kafka did not take"
)
