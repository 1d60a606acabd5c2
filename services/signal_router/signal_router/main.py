"""Composition root of the signal_router service: `faststream run signal_router.main:app`."""

from egis_common.runtime import build_app, build_runtime, serve

from signal_router.flow import register
from signal_router.settings import RouterSettings

runtime = build_runtime(RouterSettings())
register(runtime)
app = build_app(runtime, service="signal_router")


def main() -> None:
    serve(app)


if __name__ == "__main__":
    main()
