"""Composition root of the signal_router service: `python -m signal_router.main`.

One process, one event loop: the FastStream app (router, outbox relay,
metrics), the bots feed both halves share, and the webhook's HTTP server.
Start order: migrations and metrics; the bots feed, read to its end; the
brokers (router subscriber, gateway producer); the outbox relay; HTTP last,
so no request meets a half-loaded view or a producer not yet connected.
`EGIS_ROUTER_ENABLED=false` / `EGIS_GATEWAY_ENABLED=false` run one half only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from faststream import FastStream
from faststream.kafka import KafkaBroker

from egis_common.entry import answer_arguments
from egis_common.http_server import HttpServer
from egis_common.runtime import Runtime, build_app, build_runtime, serve
from signal_router import repository
from signal_router.adapters.gateway_producer import make_gateway_broker
from signal_router.adapters.http import create_http_app
from signal_router.asyncapi import asyncapi_document
from signal_router.bots import BotView
from signal_router.flow import Wiring, register
from signal_router.settings import RouterSettings


@dataclass(frozen=True)
class Service:
    app: FastStream
    runtime: Runtime
    wiring: Wiring
    view: BotView
    http: HttpServer
    gateway_broker: KafkaBroker


def create_service(settings: RouterSettings | None = None, *, migrate: bool = True) -> Service:
    settings = settings or RouterSettings()
    runtime = build_runtime(settings)
    view = BotView()
    gateway_broker = make_gateway_broker(settings)
    wiring = register(runtime, view, gateway_broker)
    app = build_app(runtime, service="signal_router", migrate=migrate)
    app.add_broker(gateway_broker)
    http_app = create_http_app(wiring.gateway, max_body_bytes=settings.max_body_bytes, asyncapi=asyncapi_document(app))
    http = HttpServer(http_app, settings.http_host, settings.http_port)

    @app.on_startup
    async def load_bots() -> None:
        await wiring.bots_feed.start(settings.bots_ready_timeout_seconds)
        view.ready = True

    if settings.gateway_enabled:
        app.on_startup(wiring.decided.start)
        app.after_startup(http.start)
        app.on_shutdown(http.stop)
        app.on_shutdown(wiring.decided.stop)

    @app.after_startup
    async def prune_dedup_rows() -> None:
        keep = timedelta(days=settings.dedup_retention_days)
        runtime.start_task(
            runtime.every(settings.retention_interval_seconds, lambda: prune_signals(runtime, keep), "dedup-retention"),
            "dedup-retention",
        )

    app.on_shutdown(wiring.bots_feed.stop)
    return Service(app, runtime, wiring, view, http, gateway_broker)


async def prune_signals(runtime: Runtime, keep: timedelta) -> None:
    while True:
        async with runtime.engine.begin() as conn:
            if await repository.prune_signals(conn, keep) == 0:
                return


def create_app() -> FastStream:
    """For `faststream run --factory signal_router.main:create_app`."""
    return create_service().app


SUMMARY = "The webhook gateway (POST /v1/signals) and the router that turns each signal into an order intent or a skip."


def main() -> None:
    answer_arguments("egis-signal-router", SUMMARY, RouterSettings, "services/signal_router/README.md")
    serve(create_app())


if __name__ == "__main__":
    main()
