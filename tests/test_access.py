"""Each service's code uses only the topics its Kafka principals are granted (`egis_common.access`).

The broker refuses anything else once authentication is on, so a topic a service starts to use
without a grant would fail in production: here it fails first, naming the topic.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from egis_common import access
from egis_common.topics import ALL_TOPICS, topic_named

DOCS_TOOL = Path(__file__).resolve().parents[1] / "tools" / "docs_gen.py"

# The principals one service's processes log in as: the signal router's webhook gateway has its own.
PRINCIPALS = {
    "signal_router": ("signal_router", "gateway"),
    "executor": ("executor",),
    "ledger": ("ledger",),
    "reconciler": ("reconciler",),
}


def describe_service(service: str):
    """What the service consumes and produces, as tools/docs_gen.py reads it from the service's wiring."""
    spec = importlib.util.spec_from_file_location("egis_docs_gen_tool", DOCS_TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.describe_service(service)


def _granted(service: str, field: str) -> set[str]:
    return {topic for principal in PRINCIPALS[service] for topic in getattr(access.GRANTS[principal], field)}


@pytest.mark.parametrize("service", access.SERVICES)
def test_a_service_consumes_only_granted_topics_in_its_own_groups(service):
    described = describe_service(service)
    missing = {consumer.topic.name for consumer in described.consumes} - _granted(service, "reads")
    assert not missing, f"{service} consumes {sorted(missing)} without a grant in egis_common.access"
    prefix = access.GRANTS[service].group_prefix
    foreign = [
        consumer.group for consumer in described.consumes if consumer.group and not consumer.group.startswith(prefix)
    ]
    assert not foreign, f"{service} joins consumer groups outside its prefix {prefix!r}: {foreign}"


@pytest.mark.parametrize("service", access.SERVICES)
def test_a_service_produces_only_to_granted_topics(service):
    topics = {
        topic.name
        for message in describe_service(service).produces
        for topic in ALL_TOPICS
        if message in topic.messages
    }
    missing = topics - _granted(service, "writes")
    assert not missing, f"{service} produces to {sorted(missing)} without a grant in egis_common.access"


def test_grants_name_only_registry_topics_and_public_events_are_read_only_for_teams():
    for grant in access.GRANTS.values():
        for name in (*grant.writes, *grant.reads):
            if name != access.DEAD_LETTERS[0]:
                topic_named(name)  # raises for a name that is not in the registry
    team = access.team("risk")
    assert team.writes == () and set(team.reads) == set(access.PUBLIC_EVENTS)
    assert all(b.operation in ("READ", "DESCRIBE") for b in access.bindings(team))
    with pytest.raises(ValueError):
        access.team("Risk Team")


def test_only_the_router_writes_intents_and_only_the_executor_writes_executions():
    writers = {
        name: {p for p, g in access.GRANTS.items() if name in g.writes}
        for name in ("egis.router.intents.v1", "egis.executor.executions.v1", "egis.signals.received.v1")
    }
    assert writers == {
        "egis.router.intents.v1": {"signal_router"},
        "egis.executor.executions.v1": {"executor"},
        "egis.signals.received.v1": {"gateway"},
    }
