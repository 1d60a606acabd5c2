"""Composition root of the executor service: `python -m executor.main`
(or `faststream run --factory executor.main:create_app`).

One process, one event loop: the FastStream app (executor flow, outbox relay,
metrics), the bots feed (read to its end before any intent is consumed), the exchange
adapters (paper always; Binance when accounts are configured, with one user data stream task
per Binance account), and the periodic jobs: the gauges (pending orders, intents in each intermediate state),
reservations asked again, closes sent again, and the stale-submission sweep.
"""

from __future__ import annotations

from faststream import FastStream

from egis_common.entry import answer_arguments
from egis_common.runtime import build_app, build_runtime, serve
from executor.adapters.exchanges import close_exchanges
from executor.flow import register
from executor.handlers import ask_again, resend_closes, sweep
from executor.metrics import refresh_gauges
from executor.settings import ExecutorSettings


def create_app(settings: ExecutorSettings | None = None) -> FastStream:
    settings = settings or ExecutorSettings()
    runtime = build_runtime(settings)
    wiring = register(runtime)
    app = build_app(runtime, service="executor")
    app.on_startup(wiring.bots.start)  # before the brokers: no intent meets a half-loaded view of bots

    @app.after_startup
    async def periodic() -> None:
        gauges = runtime.every(settings.gauge_refresh_seconds, lambda: refresh_gauges(runtime.engine), "gauges")
        runtime.start_task(gauges, "gauges")
        stale = runtime.every(60, lambda: sweep(wiring.executor, settings.stale_submission_seconds), "stale-sweep")
        runtime.start_task(stale, "stale-sweep")
        again = runtime.every(
            settings.reservation_resend_every_seconds,
            lambda: ask_again(
                wiring.executor, settings.reservation_resend_after_seconds, settings.reservation_resend_batch
            ),
            "reservation-resend",
        )
        runtime.start_task(again, "reservation-resend")
        closes = runtime.every(
            settings.close_resend_every_seconds,
            lambda: resend_closes(wiring.executor, settings.close_resend_batch),
            "close-resend",
        )
        runtime.start_task(closes, "close-resend")

    @app.after_startup
    async def user_data_streams() -> None:
        if settings.binance_accounts and settings.binance_stream_enabled:
            # Imported here, like the adapter: python-binance is only loaded when Binance is configured.
            from executor.adapters.user_streams import start_user_streams

            start_user_streams(runtime)  # one task per account, cancelled with the runtime's tasks

    @app.on_shutdown
    async def close() -> None:
        await close_exchanges(wiring.exchanges)

    return app


SUMMARY = "The executor: places each intent's order on its venue (paper or Binance) and reports what the venue did."


def main() -> None:
    answer_arguments("egis-executor", SUMMARY, ExecutorSettings, "services/executor/README.md")
    serve(create_app())


if __name__ == "__main__":
    main()
