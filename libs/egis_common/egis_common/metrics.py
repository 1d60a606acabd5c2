"""Prometheus metrics shared by every service, and the endpoint that serves them."""

from __future__ import annotations

from collections.abc import Mapping

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY, Counter, Histogram, make_asgi_app

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


def kafka_middleware(service_name: str) -> KafkaPrometheusMiddleware:
    """FastStream's own consume/publish metrics, labelled with the service."""
    return KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service_name)


async def serve_metrics(host: str, port: int, routes: Mapping[str, object] | None = None) -> HttpServer:
    """Serve the metrics, and the ASGI apps of `routes` at their exact paths, until `.stop()`.

    In the service's own event loop, so a probe such as `/health/ready` can use the service's
    brokers. Every other path answers the metrics, as prometheus_client's own server does.
    """
    metrics = make_asgi_app(REGISTRY)
    routes = dict(routes or {})

    async def app(scope, receive, send) -> None:
        await routes.get(scope["path"], metrics)(scope, receive, send)

    server = HttpServer(app, host, port)
    await server.start()
    return server
