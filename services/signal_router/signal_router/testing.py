"""Pytest fixtures for every test that needs a running signal_router (loaded by the root conftest).

One router for the whole session, like the ledger: every router shares the one
dedup table, so a second instance in the same group (or another group) could
decide a signal first with a bot view that has not caught up yet.
"""

from __future__ import annotations

import pytest

from signal_router.settings import RouterSettings


@pytest.fixture(scope="session")
def router_settings(test_database) -> RouterSettings:
    return RouterSettings(metrics_port=0, http_port=0, log_json=True, log_level="WARNING")


@pytest.fixture(scope="session")
async def signal_router_service(router_settings):
    """The router, the bots feed and the gateway on a loopback port, as `python -m signal_router.main` runs them."""
    from signal_router.main import create_service

    running = create_service(router_settings, migrate=False)
    await running.app.start()
    yield running
    await running.app.stop()
