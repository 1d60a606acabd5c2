"""Which halves a process runs: both by default, the gateway alone when the router is off."""

from __future__ import annotations

import pytest

from signal_router.main import create_service
from signal_router.settings import RouterSettings


@pytest.mark.parametrize(("switches", "subscribers"), [({}, 1), ({"router_enabled": False}, 0)])
def test_the_router_subscribes_only_when_enabled(switches, subscribers):
    service = create_service(RouterSettings(metrics_port=0, http_port=0, **switches), migrate=False)
    assert len(service.runtime.broker.subscribers) == subscribers
