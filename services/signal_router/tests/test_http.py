"""The webhook's HTTP answers, in-process, with a publisher stub: status, reason, metrics."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client import REGISTRY
from router_support import signal_body
from test_gateway import RecordingPublish, gateway_with_bot

from egis_common.contracts import utc_now
from signal_router.adapters.http import create_http_app

MAX_BODY = 4096


@pytest.fixture
async def setup():
    gateway, bot, secret = gateway_with_bot()
    gateway.clock = utc_now  # the bodies carry the real time
    app = create_http_app(gateway, max_body_bytes=MAX_BODY, asyncapi={"asyncapi": "3.0.0"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        yield client, gateway, bot, secret


def raw(client, content: bytes | str, content_type: str = "application/json"):
    return client.post("/v1/signals", content=content, headers={"content-type": content_type})


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_valid_signal_gets_202_with_its_signal_id_and_is_counted(setup):
    client, gateway, bot, secret = setup
    accepted_before = sample("egis_gateway_signals_accepted_total")
    response = await client.post("/v1/signals", json=signal_body(bot, secret))
    assert response.status_code == 202
    assert response.json() == {"signal_id": str(gateway.publish.published[0].signal_id), "status": "accepted"}
    assert sample("egis_gateway_signals_accepted_total") == accepted_before + 1
    assert sample("egis_gateway_request_seconds_count", outcome="accepted") >= 1


@pytest.mark.parametrize(
    ("content", "content_type", "status", "reason"),
    [
        ("{}", "text/plain", 415, "unsupported_media_type"),
        ("{}", "application/json; charset=latin-1", 415, "unsupported_media_type"),
        ("{", "application/json", 400, "malformed_json"),
        ("[]", "application/json", 400, "malformed_json"),
        ('{"signal_key": NaN}', "application/json", 400, "malformed_json"),
        ('{"secret": "a", "secret": "b"}', "application/json", 400, "malformed_json"),
        (b"\xff\xfe{}", "application/json", 400, "malformed_json"),
        ("[" * 3000, "application/json", 400, "malformed_json"),
        ("x" * (MAX_BODY + 1), "application/json", 413, "body_too_large"),
        ('{"signal_key": "k"}', "application/json; charset=UTF-8", 422, "missing_field"),
    ],
)
async def test_a_request_that_is_not_a_json_object_of_acceptable_size_is_refused(
    setup, content, content_type, status, reason
):
    client, gateway, *_ = setup
    before = sample("egis_gateway_signals_rejected_total", reason=reason)
    response = await raw(client, content, content_type)
    assert (response.status_code, response.json()["reason"]) == (status, reason)
    assert sample("egis_gateway_signals_rejected_total", reason=reason) == before + 1
    assert gateway.publish.published == []


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"extra": 1}, "unknown_field"),
        ({"size_usd": 10.5}, "number_not_allowed"),
        ({"size_usd": 100}, "number_not_allowed"),
        ({"size_usd": "1e3"}, "invalid_decimal"),
        ({"size_usd": "NaN"}, "invalid_decimal"),
        ({"size_usd": "-5"}, "size_out_of_range"),
        ({"size_usd": "0"}, "size_out_of_range"),
        ({"size_usd": "5000000"}, "size_out_of_range"),
        ({"take_profit_price": "-1"}, "invalid_decimal"),
        ({"timestamp": 1767225600}, "invalid_timestamp"),
        ({"timestamp": "2026-01-01T00:00:00"}, "invalid_timestamp"),
        ({"action": "buy\n"}, "invalid_field"),
        ({"symbol": "BTC\u0000USDT"}, "invalid_field"),
        ({"signal_id": "has spaces"}, "invalid_field"),
        ({"secret": 12345}, "invalid_field"),
        ({"action": "hodl"}, "unknown_action"),
        ({"symbol": "FAKEUSDT"}, "unknown_symbol"),
        ({"action": "close", "size_usd": "10"}, "not_allowed_for_close"),
        ({"take_profit_price": "90", "stop_loss_price": "100"}, "inconsistent_tp_sl"),
        ({"timestamp": "2001-01-01T00:00:00Z"}, "stale_signal"),
        ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp_in_future"),
    ],
)
async def test_invalid_fields_get_422_with_a_machine_readable_reason(setup, fields, reason):
    client, gateway, bot, secret = setup
    response = await client.post(
        "/v1/signals",
        content=json.dumps({**signal_body(bot, secret), **fields}),
        headers={"content-type": "application/json"},
    )
    assert (response.status_code, response.json()["reason"]) == (422, reason), response.text
    assert gateway.publish.published == []


async def test_kafka_unavailable_gets_503_with_retry_after(setup):
    client, gateway, bot, secret = setup
    gateway.publish = RecordingPublish(fail=True)
    response = await client.post("/v1/signals", json=signal_body(bot, secret))
    assert (response.status_code, response.json()["reason"]) == (503, "broker_unavailable")
    assert response.headers["retry-after"] == "1"


async def test_other_paths_and_methods_answer_in_the_same_shape(setup):
    client, *_ = setup
    assert (await client.get("/v1/signals")).json()["reason"] == "method_not_allowed"
    assert (await client.post("/elsewhere")).json()["reason"] == "not_found"
    assert (await client.get("/asyncapi.json")).json() == {"asyncapi": "3.0.0"}
    assert "/v1/signals" in (await client.get("/openapi.json")).json()["paths"]
