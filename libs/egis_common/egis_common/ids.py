"""Deterministic identifiers.

An `intent_id` is a pure function of the signal it came from, so a redelivered
signal yields the same intent. The client order id sent to the exchange is a
pure function of the intent and the order's purpose, so a restarted executor
asks the exchange about exactly the order it may have placed before.
Binance accepts at most 36 characters of `[.A-Za-z0-9:/_-]`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from enum import Enum

# Fixed namespace: changing it would change every id derived from it.
EGIS_NAMESPACE = uuid.UUID("6f1c9d52-8a4e-5b7e-9c1f-3d2a7e4b8c60")

CLIENT_ORDER_ID_PATTERN = re.compile(r"[.A-Za-z0-9:/_-]{1,36}")


class OrderPurpose(str, Enum):
    """Why an order exists; each intent has at most one order per purpose."""

    ENTRY = "o"  # the market order that opens or closes the position
    TAKE_PROFIT = "t"
    STOP_LOSS = "s"


def new_message_id() -> uuid.UUID:
    return uuid.uuid4()


def intent_id_for(signal_id: uuid.UUID) -> uuid.UUID:
    """The intent derived from a signal; the same signal always gives the same intent."""
    return uuid.uuid5(EGIS_NAMESPACE, f"intent:{signal_id}")


def client_order_id(intent_id: uuid.UUID, purpose: OrderPurpose = OrderPurpose.ENTRY) -> str:
    """`eg<purpose>-<32 hex>`: 35 characters, stable across restarts."""
    value = f"eg{purpose.value}-{intent_id.hex}"
    assert CLIENT_ORDER_ID_PATTERN.fullmatch(value), value
    return value


def intent_id_from_client_order_id(value: str) -> uuid.UUID:
    """Inverse of `client_order_id`, for facts that only carry the client id."""
    if not CLIENT_ORDER_ID_PATTERN.fullmatch(value) or not value.startswith("eg") or value[3:4] != "-":
        raise ValueError(f"{value!r} is not an Egis client order id")
    return uuid.UUID(hex=value[4:])


def signal_dedup_key(
    signal_key: str, action: str, symbol: str, timestamp: datetime | None, client_signal_id: str | None
) -> str:
    """The durable dedup key of a signal: the client's id when given, else a hash of its content.

    Without a client id or timestamp, two identical alerts cannot be told apart
    from one alert delivered twice; the router treats them as duplicates, which
    is the safe side for an execution system.
    """
    if client_signal_id:
        return f"client:{signal_key}:{client_signal_id}"
    stamp = timestamp.isoformat() if timestamp else "-"
    digest = hashlib.sha256(f"{signal_key}\x1f{action}\x1f{symbol}\x1f{stamp}".encode()).hexdigest()
    return f"content:{digest}"


def signal_id_for(dedup_key: str) -> uuid.UUID:
    """The signal id is derived from its dedup key, so a duplicate gets the same id."""
    return uuid.uuid5(EGIS_NAMESPACE, f"signal:{dedup_key}")
