"""Thousands of hostile requests against the running gateway: no 5xx, no 2xx, no message.

Hypothesis sends 3,000 requests in-process (ASGI) to the service's real
gateway (real bot view, real Kafka producer); schemathesis sends the
negative cases it derives from the OpenAPI document over real HTTP. Every
answer must be a 4xx, and the received-signals topic must not grow. The long run
(docs/testing.md) sets EGIS_HOSTILE_EXAMPLES and EGIS_SCHEMATHESIS_EXAMPLES higher.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
import schemathesis
from aiokafka import AIOKafkaConsumer, TopicPartition
from hostile_bodies import hostile_requests
from hypothesis import HealthCheck, given, settings
from router_support import new_bot
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from egis_common.topics import SIGNALS_RECEIVED
from signal_router.adapters.http import openapi_document
from signal_router.settings import DEFAULT_SYMBOLS

pytestmark = pytest.mark.infra
HYPOTHESIS_EXAMPLES = int(os.environ.get("EGIS_HOSTILE_EXAMPLES", "3000"))
SCHEMATHESIS_EXAMPLES = int(os.environ.get("EGIS_SCHEMATHESIS_EXAMPLES", "1000"))
BOT, SECRET = new_bot()
HOSTILE = settings(
    deadline=None,
    database=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


class Watch:
    """Counts requests, records anything the gateway would publish, checks the topic after."""

    def __init__(self, service, bootstrap: str, login: dict[str, str]) -> None:
        self.gateway = service.wiring.gateway
        self.bootstrap = bootstrap
        self.login = login
        self.sent = 0
        self.published = []
        self._publish = self.gateway.publish

    async def publish(self, signal) -> None:
        self.published.append(signal)
        await self._publish(signal)

    async def end_offsets(self) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, **self.login)
        await consumer.start()
        try:
            return await consumer.end_offsets(
                [TopicPartition(SIGNALS_RECEIVED.name, p) for p in range(SIGNALS_RECEIVED.partitions)]
            )
        finally:
            await consumer.stop()


@pytest.fixture
async def watch(service, producer, infra, request):
    from egis_localinfra.testing import eventually

    await producer.send(BOT)

    async def known():
        return service.view.get(BOT.bot_id) is not None

    await eventually(known, what="bot in the view")
    spy = Watch(service, infra.kafka_bootstrap, infra.kafka_options())
    before = await spy.end_offsets()
    spy.gateway.publish = spy.publish
    yield spy
    spy.gateway.publish = spy._publish
    assert spy.sent >= request.function.minimum_requests
    assert spy.published == [], "a hostile request was published"
    assert await spy.end_offsets() == before, "the received-signals topic grew"


@pytest.fixture
async def in_process(service):
    transport = httpx.ASGITransport(service.http.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@settings(HOSTILE, max_examples=HYPOTHESIS_EXAMPLES)
@given(request=hostile_requests(BOT, SECRET, frozenset(DEFAULT_SYMBOLS), 4096))
async def test_hypothesis_hostile_bodies_get_a_4xx_and_produce_nothing(watch, in_process, request):
    body, content_type = request
    response = await in_process.post("/v1/signals", content=body, headers={"content-type": content_type})
    watch.sent += 1
    assert 400 <= response.status_code < 500, (response.status_code, response.text, body[:300])
    assert "reason" in response.json()


test_hypothesis_hostile_bodies_get_a_4xx_and_produce_nothing.minimum_requests = HYPOTHESIS_EXAMPLES


# Refusing a schema-violating body with 413 (too large) is as right as 400/401/415/422.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": ["400", "401", "413", "415", "422"]}}}
)
OPERATION = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)["/v1/signals"]["POST"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@settings(HOSTILE, max_examples=SCHEMATHESIS_EXAMPLES)
@given(case=OPERATION.as_strategy(generation_mode=GenerationMode.NEGATIVE))
async def test_schemathesis_negative_cases_over_http_get_a_4xx_and_produce_nothing(watch, client, case):
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    content = json.dumps(kwargs["json"], allow_nan=True) if "json" in kwargs else kwargs.get("data")
    response = await client.request(
        kwargs["method"], kwargs["url"], headers=kwargs.get("headers"), params=kwargs.get("params"), content=content
    )
    watch.sent += 1
    case.validate_response(response, checks=CHECKS)
    assert 400 <= response.status_code < 500


test_schemathesis_negative_cases_over_http_get_a_4xx_and_produce_nothing.minimum_requests = SCHEMATHESIS_EXAMPLES
