"""The webhook body: its schema (also the OpenAPI request body) and its strict parsing.

Parsing refuses what a lax JSON reader lets through: NaN and Infinity
literals, duplicate keys (`{"secret": "a", "secret": "b"}` must not mean
one thing here and another elsewhere), JSON numbers for money, naive or
numeric timestamps, control characters and unpaired surrogates in strings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from egis_common.money import MoneyFormatError, PositiveUsd, Price, parse_decimal
from signal_router.reasons import Rejected, RejectReason

_PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]+$"  # no C0 or C1 control characters
_ID_CHARS = r"^[A-Za-z0-9._:/@#+=-]+$"


def _iso_timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("timestamp must be an ISO 8601 string such as 2026-01-31T12:00:00Z")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp must carry a UTC offset, e.g. a trailing Z")
    try:  # one instant, one spelling: the dedup key must not depend on the sender's offset
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range") from None


# Anchored (JSON Schema patterns are searches) and unsigned: what these fields accept.
_POSITIVE_DECIMAL = WithJsonSchema({"type": "string", "pattern": r"^(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?$"})
Size = Annotated[PositiveUsd, _POSITIVE_DECIMAL]
TriggerPrice = Annotated[Price, _POSITIVE_DECIMAL]
Timestamp = Annotated[
    datetime,
    BeforeValidator(_iso_timestamp),
    Field(json_schema_extra={"type": "string", "format": "date-time", "maxLength": 40}),
]


class WebhookSignal(BaseModel):
    """A signal as TradingView (or another gateway) posts it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signal_key: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_PRINTABLE)]
    secret: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=_PRINTABLE)]
    action: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=_PRINTABLE)] = Field(
        description="buy|long|open_long|enter_long, sell|short|open_short|enter_short, "
        "exit|close|flat|close_all|close_long|close_short|exit_long|exit_short (any case)"
    )
    symbol: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=_PRINTABLE)] = Field(
        description="an allowed USDⓈ-M symbol such as BTCUSDT; TradingView's `.P` suffix is accepted"
    )
    size_usd: Size | None = Field(default=None, description="overrides the bot's default order size")
    take_profit_price: TriggerPrice | None = None
    stop_loss_price: TriggerPrice | None = None
    timestamp: Timestamp | None = Field(default=None, description="when the alert fired, e.g. {{timenow}}")
    signal_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_ID_CHARS)] | None = Field(
        default=None, description="the sender's own id; two posts with one id are one signal"
    )


def parse_signal(body: bytes) -> WebhookSignal:
    try:
        return WebhookSignal.model_validate(_load_object(body))
    except ValidationError as error:
        raise _rejection(error.errors(include_url=False)[0]) from None


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Rejected(RejectReason.MALFORMED_JSON, str(error)[:200]) from None
    if not isinstance(value, dict):
        raise Rejected(RejectReason.MALFORMED_JSON, "the body must be a JSON object")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in JSON object")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_MONEY_FIELDS = {"size_usd", "take_profit_price", "stop_loss_price"}


def _rejection(error: dict[str, Any]) -> Rejected:
    field = str(error["loc"][0])[:64] if error["loc"] else None  # a client-chosen name, echoed back
    kind = error["type"]
    if kind == "extra_forbidden":
        return Rejected(RejectReason.UNKNOWN_FIELD, f"unknown field {field[:40]!r}", field)
    if kind == "missing":
        return Rejected(RejectReason.MISSING_FIELD, f"{field} is required", field)
    if field in _MONEY_FIELDS:
        return Rejected(_money_reason(field, error.get("input")), str(error["msg"])[:200], field)
    reason = RejectReason.INVALID_TIMESTAMP if field == "timestamp" else RejectReason.INVALID_FIELD
    return Rejected(reason, f"{field}: {error['msg']}"[:200], field)


def _money_reason(field: str, given: Any) -> RejectReason:
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        return RejectReason.NUMBER_NOT_ALLOWED
    try:
        parse_decimal(given)
    except MoneyFormatError:
        return RejectReason.INVALID_DECIMAL
    # A well-formed decimal refused anyway is zero or negative.
    return RejectReason.SIZE_OUT_OF_RANGE if field == "size_usd" else RejectReason.INVALID_DECIMAL
