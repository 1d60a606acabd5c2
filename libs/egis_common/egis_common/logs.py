"""Structured JSON logs with correlation ids carried through message headers.

A consumer binds `signal_id`, `intent_id` and `bot_id` from the incoming
headers (or the message itself); every log line in that scope carries them,
and every message written to the outbox in that scope carries them onward.
A batch handler has many messages in scope at once: its line about one
message names that message's ids (`ids_of`), and a record tried alone is
handled with its own ids bound.

The libraries' own logs (aiokafka, uvicorn, asyncio: the standard library's
`logging`) go through the same processors, so every line a service writes is
one JSON object with its service name.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars

CORRELATION_HEADERS: dict[str, str] = {
    "signal_id": "x-egis-signal-id",
    "intent_id": "x-egis-intent-id",
    "bot_id": "x-egis-bot-id",
}
# Every id a log line about a message may carry, so one signal can be followed through the services' logs.
MESSAGE_IDS = ("signal_id", "intent_id", "bot_id", "position_id", "client_order_id")
_SECRET_WORDS = ("secret", "password", "token", "api_key", "signature", "credential")
_REDACTED = "***"


def _redact_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: a field whose name says secret is never written out."""
    for key in event:
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = _REDACTED
    return event


def configure_logging(service_name: str, level: str = "INFO", *, json: bool = True) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _redact_secrets, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    _route_standard_logging(level, shared, renderer)
    bind_contextvars(service=service_name)


def _route_standard_logging(level: str, shared: list[Any], renderer: Any) -> None:
    """The standard library's records (aiokafka, uvicorn, asyncio) rendered by the same processors, on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "egis", False)]:  # configured again: one handler, not two
        root.removeHandler(old)
    handler.egis = True  # type: ignore[attr-defined]  # marks the handler this module owns
    root.addHandler(handler)
    root.setLevel(logging.getLevelName(level.upper()))


if not structlog.is_configured():
    # Until a service configures logging (tests, command lines): structlog's default renders a
    # failure with rich, every local variable included. With a batch of Kafka records in scope
    # that blocks the event loop long enough for consumers to miss heartbeats.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=True),
            structlog.processors.format_exc_info,
            _redact_secrets,
            structlog.dev.ConsoleRenderer(),
        ]
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


def correlation_from_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for field, header in CORRELATION_HEADERS.items():
        value = headers.get(header)
        if isinstance(value, bytes):
            value = value.decode()
        if value:
            found[field] = str(value)
    return found


def correlation_of(message: Any) -> dict[str, str]:
    """The correlation ids a message itself names."""
    return {field: str(value) for field in CORRELATION_HEADERS if (value := getattr(message, field, None)) is not None}


def ids_of(message: Any) -> dict[str, str]:
    """Every id in `MESSAGE_IDS` that a message names: for a log line about it among others in a batch."""
    return {field: str(value) for field in MESSAGE_IDS if (value := getattr(message, field, None)) is not None}


def bind_correlation(**ids: Any) -> None:
    bind_contextvars(**{key: str(value) for key, value in ids.items() if value is not None})


def current_correlation() -> dict[str, str]:
    context = get_contextvars()
    return {field: context[field] for field in CORRELATION_HEADERS if field in context}


def correlation_headers(message: Any = None) -> dict[str, str]:
    """Headers for an outgoing message: the current scope's ids, then the message's own."""
    ids = {**current_correlation(), **(correlation_of(message) if message is not None else {})}
    return {CORRELATION_HEADERS[field]: value for field, value in ids.items()}


def reset_correlation(service_name: str | None = None) -> None:
    clear_contextvars()
    if service_name:
        bind_contextvars(service=service_name)
