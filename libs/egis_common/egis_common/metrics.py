"""Prometheus metrics shared by every service, and the endpoint that serves them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_asgi_app

from egis_common.http_server import HttpServer

HANDLER_SECONDS = Histogram(
    "egis_handler_seconds",
    "Time a message handler took, database commit included",
    ["service", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DEAD_LETTERED = Counter("egis_messages_dead_lettered_total", "Messages sent to the dead-letter topic", ["topic"])
OUTBOX_PUBLISHED = Counter("egis_outbox_published_total", "Outbox rows published to Kafka", ["schema"])
MESSAGING_ROWS_PRUNED = Counter(
    "egis_messaging_rows_pruned_total", "Published outbox rows and old inbox claims deleted", ["schema", "table"]
)
OUTBOX_UNPUBLISHED = Gauge("egis_outbox_unpublished", "Outbox rows committed and not yet published", ["schema"])
OUTBOX_OLDEST_AGE = Gauge(
    "egis_outbox_oldest_unpublished_age_seconds",
    "How long the oldest unpublished outbox row has waited since its commit (0 when there is none)",
    ["schema"],
)
CONSUMER_LAG = Gauge(
    "egis_consumer_lag",
    "Records a consumer group has yet to commit on a partition: its end offset minus the group's committed offset",
    ["group", "topic", "partition"],
)
READY = Gauge(
    "egis_ready",
    "1 while the service's database and Kafka answer (the checks of /health/ready), else 0",
    ["service"],
)

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


def kafka_middleware(service_name: str) -> KafkaPrometheusMiddleware:
    """FastStream's own consume/publish metrics, labelled with the service."""
    return KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service_name)


async def serve_metrics(host: str, port: int, routes: Mapping[str, ASGIApp] | None = None) -> HttpServer:
    """Serve the metrics, and the ASGI apps of `routes` at their exact paths, until `.stop()`.

    In the service's own event loop, so a probe such as `/health/ready` can use the service's
    brokers. Every other path answers the metrics, as prometheus_client's own server does.
    """
    metrics: ASGIApp = make_asgi_app(REGISTRY)
    paths = dict(routes or {})

    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        await paths.get(scope["path"], metrics)(scope, receive, send)

    server = HttpServer(app, host, port)
    await server.start()
    return server
