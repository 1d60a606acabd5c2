"""Composition root of the executor service: `faststream run executor.main:app`."""

from egis_common.runtime import build_app, build_runtime, serve

from executor.flow import register
from executor.settings import ExecutorSettings

runtime = build_runtime(ExecutorSettings())
register(runtime)
app = build_app(runtime, service="executor")


def main() -> None:
    serve(app)


if __name__ == "__main__":
    main()
