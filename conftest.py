"""Fixtures for the whole suite, wherever its tests live.

Real Kafka and Postgres and the guards come from `egis_localinfra.pytest_plugin`; Kafka requires a
login and ACLs, so every service logs in as its own principal (`infra.kafka_settings`) and the
tests' own clients as the super user (`infra.kafka_options()`). One
in-process ledger and one signal_router serve the tests of any service that needs them,
each for the whole session: every start of a consumer group costs a rebalance, and every
router shares the one dedup table, so a second instance could decide a signal first with a
bot view that has not caught up yet. They live here, not in the services' packages, so no
production package ships pytest fixtures.
"""

from __future__ import annotations

import pytest

from egis_common.runtime import build_runtime
from egis_localinfra.testing import stop_service
from ledger.flow import register as register_ledger
from ledger.settings import LedgerSettings
from signal_router.settings import RouterSettings

pytest_plugins = ["egis_localinfra.pytest_plugin", "pytester"]


@pytest.fixture(scope="session")
async def ledger_runtime(infra, test_database):
    """The ledger's flow with its outbox relay running (no HTTP API: tests that need it start their own)."""
    runtime = build_runtime(
        LedgerSettings(metrics_port=0, outbox_poll_interval_seconds=0.2, **infra.kafka_settings("ledger"))
    )
    register_ledger(runtime)
    await runtime.broker.start()
    await runtime.start_relay()
    yield runtime
    await stop_service(runtime)


@pytest.fixture(scope="session")
def router_settings(infra, test_database) -> RouterSettings:
    return RouterSettings(
        metrics_port=0, http_port=0, log_json=True, log_level="WARNING", **infra.kafka_settings("signal_router")
    )


@pytest.fixture(scope="session")
async def signal_router_service(router_settings):
    """The router, the bots feed and the gateway on a loopback port, as `python -m signal_router.main` runs them."""
    from signal_router.main import create_service

    running = create_service(router_settings, migrate=False)
    await running.app.start()
    yield running
    await running.app.stop()
