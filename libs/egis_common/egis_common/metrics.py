"""Prometheus metrics shared by every service, and the endpoint that serves them."""

from __future__ import annotations

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server

HANDLER_SECONDS = Histogram(
    "egis_handler_seconds",
    "Time a message handler took, database commit included",
    ["service", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DEAD_LETTERED = Counter(
    "egis_messages_dead_lettered_total", "Messages sent to the dead-letter topic", ["topic"]
)
OUTBOX_PUBLISHED = Counter(
    "egis_outbox_published_total", "Outbox rows published to Kafka", ["schema"]
)
MESSAGING_ROWS_PRUNED = Counter(
    "egis_messaging_rows_pruned_total", "Published outbox rows and old inbox claims deleted", ["schema", "table"]
)


def kafka_middleware(service_name: str) -> KafkaPrometheusMiddleware:
    """FastStream's own consume/publish metrics, labelled with the service."""
    return KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service_name)


def serve_metrics(host: str, port: int) -> None:
    start_http_server(port, addr=host)
