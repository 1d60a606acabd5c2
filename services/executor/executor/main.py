"""Composition root of the executor service: `faststream run executor.main:app`."""

from egis_common.runtime import build_app, build_runtime

from executor.flow import register
from executor.settings import ExecutorSettings

runtime = build_runtime(ExecutorSettings())
register(runtime)
app = build_app(runtime, service="executor")
