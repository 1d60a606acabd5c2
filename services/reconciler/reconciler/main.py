"""Composition root of the reconciler service: `python -m reconciler.main`
(or `faststream run --factory reconciler.main:create_app`).

One process, one event loop: the FastStream app (reconciler flow, outbox relay,
metrics) and the pending resolver, run every EGIS_PENDING_RESOLVE_INTERVAL_SECONDS:
unknown outcomes are settled from the venue's evidence without an operator.
"""

from __future__ import annotations

from faststream import FastStream

from egis_common.entry import answer_arguments
from egis_common.runtime import build_app, build_runtime, serve
from reconciler.flow import register
from reconciler.settings import ReconcilerSettings


def create_app(settings: ReconcilerSettings | None = None) -> FastStream:
    settings = settings or ReconcilerSettings()
    runtime = build_runtime(settings)
    resolver = register(runtime)
    app = build_app(runtime, service="reconciler")

    @app.after_startup
    async def periodic() -> None:
        job = runtime.every(settings.pending_resolve_interval_seconds, resolver.run, "pending-resolver")
        runtime.start_task(job, "pending-resolver")

    return app


SUMMARY = (
    "The reconciler: keeps the ledger true to the venue (its facts, its own closes, unknown outcomes) "
    "and runs operators' repairs."
)


def main() -> None:
    answer_arguments("egis-reconciler", SUMMARY, ReconcilerSettings, "services/reconciler/README.md")
    serve(create_app())


if __name__ == "__main__":
    main()
