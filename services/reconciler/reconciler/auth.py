"""Operator authentication of admin commands: HMAC-SHA256 of the canonical command (egis_common.admin_client)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum

from pydantic import SecretStr

from egis_common import contracts as c
from egis_common.admin_client import canonical, signature_for, signed

__all__ = ["Refusal", "canonical", "refusal", "signature_for", "signed"]


class Refusal(str, Enum):
    UNSIGNED = "unsigned"
    UNKNOWN_OPERATOR = "unknown_operator"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"


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
