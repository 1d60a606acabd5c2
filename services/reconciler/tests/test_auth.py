"""Operator signatures on admin commands."""

from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import SecretStr

from egis_common import contracts as c
from egis_common.contracts import utc_now
from egis_common.topics import ADMIN_COMMANDS, encode
from reconciler.auth import Refusal, refusal, signed

KEYS = {"alice": SecretStr("alice-key"), "bob": SecretStr("bob-key")}
MAX_AGE = timedelta(minutes=5)


def command(**changes) -> c.AdminCommand:
    fields = {
        "request_id": uuid.uuid4(),
        "command": c.AdminCommandName.DRIFT_REPORT,
        "operator_id": "alice",
        "signature": "",
        **changes,
    }
    return c.AdminCommand(**fields)


def test_a_command_signed_by_a_known_operator_is_accepted_after_a_trip_over_the_wire():
    sent = signed(command(confirm=True), "alice-key")
    received = ADMIN_COMMANDS.decode(encode(sent))
    assert refusal(received, KEYS, utc_now(), MAX_AGE) is None


def test_unsigned_unknown_tampered_or_stale_commands_are_refused():
    assert refusal(command(), KEYS, utc_now(), MAX_AGE) is Refusal.UNSIGNED
    assert refusal(signed(command(operator_id="mallory"), "x"), KEYS, utc_now(), MAX_AGE) is Refusal.UNKNOWN_OPERATOR
    assert refusal(signed(command(), "bob-key"), KEYS, utc_now(), MAX_AGE) is Refusal.BAD_SIGNATURE
    tampered = signed(command(), "alice-key").model_copy(update={"confirm": True})
    assert refusal(tampered, KEYS, utc_now(), MAX_AGE) is Refusal.BAD_SIGNATURE
    old = signed(command(occurred_at=utc_now() - timedelta(minutes=10)), "alice-key")
    assert refusal(old, KEYS, utc_now(), MAX_AGE) is Refusal.STALE
