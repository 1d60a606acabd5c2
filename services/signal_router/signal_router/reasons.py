"""Why the gateway refuses a signal: one enumerated, machine-readable reason per refusal."""

from __future__ import annotations

from enum import Enum
from uuid import UUID


class RejectReason(str, Enum):
    # the request itself
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BODY_TOO_LARGE = "body_too_large"
    MALFORMED_JSON = "malformed_json"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # the body's fields
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    NUMBER_NOT_ALLOWED = "number_not_allowed"
    INVALID_DECIMAL = "invalid_decimal"
    INVALID_TIMESTAMP = "invalid_timestamp"
    # the signal's meaning
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_SYMBOL = "unknown_symbol"
    SIZE_OUT_OF_RANGE = "size_out_of_range"
    NOT_ALLOWED_FOR_CLOSE = "not_allowed_for_close"
    INCONSISTENT_TP_SL = "inconsistent_tp_sl"
    STALE_SIGNAL = "stale_signal"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    # who sent it, and whether it can be taken now
    UNAUTHORIZED = "unauthorized"
    BOTS_LOADING = "bots_loading"
    BROKER_UNAVAILABLE = "broker_unavailable"


class Rejected(Exception):
    """The gateway refuses a signal; nothing is published."""

    def __init__(self, reason: RejectReason, detail: str = "", field: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field
        self.bot_id: UUID | None = None  # the bot the post named, once known: for its owner's journal
