"""The webhook's HTTP face: `POST /v1/signals`, its OpenAPI document, and the AsyncAPI one.

Every refusal is `{"reason": <machine-readable>, "detail": <for a person>}`
with a 4xx status, or 503 when the signal could not be taken now (the caller
may retry: a retried signal keeps its signal id and is deduplicated).
A signal the router already decided is answered `200 {"signal_id", "status":
"duplicate"}`: nothing new was accepted, and the first post's fate is at
`GET /v1/signals/{signal_id}` on the ledger's API.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from egis_common.logs import get_logger
from signal_router.gateway import Gateway
from signal_router.journal_metrics import SIGNALS_DUPLICATE
from signal_router.metrics import GATEWAY_SECONDS, SIGNALS_ACCEPTED, SIGNALS_REJECTED
from signal_router.reasons import Rejected, RejectReason
from signal_router.webhook import WebhookSignal

log = get_logger(__name__)
R = RejectReason
STATUS = {
    R.MALFORMED_JSON: 400,
    R.UNAUTHORIZED: 401,
    R.NOT_FOUND: 404,
    R.METHOD_NOT_ALLOWED: 405,
    R.BODY_TOO_LARGE: 413,
    R.UNSUPPORTED_MEDIA_TYPE: 415,
    R.BOTS_LOADING: 503,
    R.BROKER_UNAVAILABLE: 503,
}  # every other reason: 422


class Accepted(BaseModel):
    signal_id: str
    status: Literal["accepted", "duplicate"] = "accepted"


class Problem(BaseModel):
    reason: RejectReason
    detail: str = ""
    field: str | None = None


def create_http_app(gateway: Gateway, *, max_body_bytes: int, asyncapi: dict[str, Any]) -> FastAPI:
    app = FastAPI(title="Egis signal gateway", version="1", docs_url=None, redoc_url=None)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _http_error)

    @app.post(
        "/v1/signals",
        status_code=202,
        response_model=Accepted,
        responses=_RESPONSES,
        openapi_extra=_REQUEST_BODY,
        summary="Accept a trading signal",
    )
    async def post_signal(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            _check_media_type(request.headers.get("content-type", ""))
            receipt = await gateway.accept(await _read_body(request, max_body_bytes))
        except Rejected as rejected:
            gateway.refused(rejected)
            return _refuse(rejected, started)
        signal_id = str(receipt.signal.signal_id)
        if receipt.duplicate:
            SIGNALS_DUPLICATE.inc()
            GATEWAY_SECONDS.labels("duplicate").observe(time.perf_counter() - started)
            return JSONResponse({"signal_id": signal_id, "status": "duplicate"}, status_code=200)
        SIGNALS_ACCEPTED.inc()
        GATEWAY_SECONDS.labels("accepted").observe(time.perf_counter() - started)
        return JSONResponse({"signal_id": signal_id, "status": "accepted"}, status_code=202)

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_document() -> dict[str, Any]:
        return asyncapi

    return app


def openapi_document() -> dict[str, Any]:
    """The endpoint's OpenAPI document, without a running gateway (for docs and schemathesis)."""
    return create_http_app(None, max_body_bytes=0, asyncapi={}).openapi()  # type: ignore[arg-type]


def _check_media_type(content_type: str) -> None:
    media_type, _, parameters = content_type.partition(";")
    charset = parameters.strip().lower().removeprefix("charset=").strip('"')
    if media_type.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        raise Rejected(R.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json (UTF-8)")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Rejected(R.BODY_TOO_LARGE, f"at most {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Rejected(R.BODY_TOO_LARGE, f"at most {limit} bytes")
    except ClientDisconnect:
        raise Rejected(R.MALFORMED_JSON, "the body ended early: the client went away") from None
    return bytes(body)


def _refuse(rejected: Rejected, started: float) -> JSONResponse:
    status = STATUS.get(rejected.reason, 422)
    SIGNALS_REJECTED.labels(rejected.reason.value).inc()
    GATEWAY_SECONDS.labels("unavailable" if status == 503 else "rejected").observe(time.perf_counter() - started)
    log.info("signal_rejected", reason=rejected.reason.value, field=rejected.field, status=status)
    body = Problem(reason=rejected.reason, detail=rejected.detail, field=rejected.field)
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    code = getattr(error, "status_code", 400)
    reason = {404: R.NOT_FOUND, 405: R.METHOD_NOT_ALLOWED}.get(code, R.MALFORMED_JSON)
    return JSONResponse(Problem(reason=reason).model_dump(mode="json"), status_code=STATUS[reason])


_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WebhookSignal.model_json_schema()}},
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Accepted, "description": "a duplicate of a signal decided before (status: duplicate)"},
    **{
        status: {"model": Problem, "description": description}
        for status, description in (
            (400, "not JSON, or not a JSON object"),
            (401, "unknown signal key or wrong secret"),
            (413, "body too large"),
            (415, "not application/json"),
            (422, "a field is missing, unknown or invalid, or the signal is refused (reason says which)"),
            (503, "Kafka did not take the signal, or the bot view is still loading: retry"),
        )
    },
}
