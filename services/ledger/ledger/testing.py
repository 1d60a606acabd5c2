"""Pytest fixture for every service's tests that need a running ledger (loaded by the root conftest).

One ledger for the whole session: each start of its consumer group costs a rebalance.
"""

from __future__ import annotations

import pytest

from egis_common.runtime import build_runtime
from egis_localinfra.testing import stop_service
from ledger.flow import register
from ledger.settings import LedgerSettings


@pytest.fixture(scope="session")
async def ledger_runtime(test_database):
    runtime = build_runtime(LedgerSettings(metrics_port=0, outbox_poll_interval_seconds=0.2))
    register(runtime)
    await runtime.broker.start()
    await runtime.start_relay()
    yield runtime
    await stop_service(runtime)
