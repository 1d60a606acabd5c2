"""Operator authentication of admin commands: HMAC-SHA256 of the canonical command.

The canonical command is the JSON of every field except `signature`, with
sorted keys and no whitespace, so the CLI and the reconciler sign the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum

from egis_common import contracts as c
from pydantic import SecretStr


class Refusal(str, Enum):
    UNSIGNED = "unsigned"
    UNKNOWN_OPERATOR = "unknown_operator"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"


def canonical(command: c.AdminCommand) -> bytes:
    fields = command.model_dump(mode="json", exclude={"signature"})
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def signature_for(command: c.AdminCommand, key: str) -> str:
    return hmac.new(key.encode(), canonical(command), hashlib.sha256).hexdigest()


def signed(command: c.AdminCommand, key: str) -> c.AdminCommand:
    return command.model_copy(update={"signature": signature_for(command, key)})


def refusal(
    command: c.AdminCommand, keys: Mapping[str, SecretStr], now: datetime, max_age: timedelta
) -> Refusal | None:
    """None when an operator we know signed exactly this command, recently; else why not."""
    if not command.signature:
        return Refusal.UNSIGNED
    key = keys.get(command.operator_id)
    if key is None:
        return Refusal.UNKNOWN_OPERATOR
    if not hmac.compare_digest(signature_for(command, key.get_secret_value()), command.signature):
        return Refusal.BAD_SIGNATURE
    if not (-max_age < now - command.occurred_at < max_age):
        return Refusal.STALE
    return None
