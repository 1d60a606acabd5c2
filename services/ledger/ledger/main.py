"""Composition root of the ledger service: `python -m ledger.main`
(or `faststream run --factory ledger.main:create_app`).

One process, one event loop: the FastStream app (ledger flow, outbox relay,
metrics) and the management HTTP API, which starts once the broker and the
relay run, so a bot change never waits for a relay that is not there.
"""

from __future__ import annotations

from faststream import FastStream

from egis_common.entry import answer_arguments
from egis_common.http_server import HttpServer
from egis_common.runtime import build_app, build_runtime, serve
from ledger.adapters.http import create_http_app
from ledger.flow import register
from ledger.handlers import on_waiting_expiry
from ledger.metrics import refresh_bot_gauges
from ledger.settings import LedgerSettings


def create_app(settings: LedgerSettings | None = None) -> FastStream:
    settings = settings or LedgerSettings()
    runtime = build_runtime(settings)
    ledger = register(runtime)
    app = build_app(runtime, service="ledger")
    http = HttpServer(create_http_app(runtime), settings.http_host, settings.http_port)
    app.after_startup(http.start)
    app.on_shutdown(http.stop)

    @app.after_startup
    async def gauges() -> None:
        runtime.start_task(
            runtime.every(settings.gauge_refresh_seconds, lambda: refresh_bot_gauges(runtime.engine), "bot-gauges"),
            "bot-gauges",
        )
        runtime.start_task(
            runtime.every(
                settings.waiting_sweep_seconds,
                lambda: on_waiting_expiry(runtime, ledger, settings.max_wait_seconds),
                "expire-waiting",
            ),
            "expire-waiting",
        )

    return app


SUMMARY = "The ledger: bots, budgets and positions; the management API and the operators' web console."


def main() -> None:
    answer_arguments("egis-ledger", SUMMARY, LedgerSettings, "services/ledger/README.md")
    serve(create_app())


if __name__ == "__main__":
    main()
