"""What the router is watched by, as `python -m signal_router.main` runs it: its readiness, its consumer lag and
its outbox backlog, and counters that start at 0 for every label they know."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from egis_common import topics as t
from egis_common.contracts import IntentKind, SignalSkipReason
from egis_localinfra.testing import eventually
from signal_router.reasons import RejectReason

pytestmark = pytest.mark.infra


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_readiness_lag_and_outbox_are_shown(signal_router_service):
    runtime = signal_router_service.runtime
    assert await runtime.readiness.check() == {"started": "ok", "database": "ok", "kafka": "ok"}
    assert sample("egis_ready", service="signal_router") == 1
    lag = await eventually(runtime.show_lag, what="a lag measurement")
    topic = t.SIGNALS_RECEIVED
    assert set(lag) >= {("signal_router", topic.name, p) for p in range(topic.partitions)}
    shown = {key: sample("egis_consumer_lag", group=key[0], topic=key[1], partition=str(key[2])) for key in lag}
    assert shown == lag
    await runtime.show_backlog()
    assert sample("egis_outbox_unpublished", schema=runtime.settings.db_schema) is not None


def test_dead_letters_and_labelled_counters_start_at_0(signal_router_service):
    assert sample("egis_messages_dead_lettered_total", topic=t.SIGNALS_RECEIVED.name) is not None
    assert None not in [sample("egis_gateway_signals_rejected_total", reason=r.value) for r in RejectReason]
    assert None not in [sample("egis_router_signals_skipped_total", reason=r.value) for r in SignalSkipReason]
    assert None not in [sample("egis_router_intents_routed_total", intent=i.value) for i in IntentKind]
