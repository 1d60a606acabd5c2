"""Composition root of the reconciler service: `faststream run reconciler.main:app`."""

from egis_common.runtime import build_app, build_runtime, serve

from reconciler.flow import register
from reconciler.settings import ReconcilerSettings

runtime = build_runtime(ReconcilerSettings())
register(runtime)
app = build_app(runtime, service="reconciler")


def main() -> None:
    serve(app)


if __name__ == "__main__":
    main()
