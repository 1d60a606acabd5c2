"""The pure rules of tokens and the audit trail: expiries, the action an edit is, what a change shows."""

from __future__ import annotations

import importlib.util
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine.result import result_tuple

from ledger import audit, auth

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("30d", NOW + timedelta(days=30)),
        ("12h", NOW + timedelta(hours=12)),
        ("90m", NOW + timedelta(minutes=90)),
        ("2w", NOW + timedelta(weeks=2)),
        ("2027-04-01T00:00:00Z", datetime(2027, 4, 1, tzinfo=UTC)),
        ("2027-04-01T02:00:00+02:00", datetime(2027, 4, 1, tzinfo=UTC)),
        ("2027-04-01", datetime(2027, 4, 1, tzinfo=UTC)),
    ],
)
def test_an_expiry_is_a_duration_from_now_or_a_time(text, expected):
    assert auth.expiry(text, NOW) == expected


@pytest.mark.parametrize("text", ["0d", "30", "30y", "-1d", "soon", "2027-02-28T00:00:00Z", "2027-03-01T12:00:00Z"])
def test_an_expiry_that_is_not_one_or_already_past_is_refused(text):
    with pytest.raises(auth.InvalidExpiry):
        auth.expiry(text, NOW)


@pytest.mark.parametrize(
    "changes, action",
    [
        ({"paused": True}, "bot.pause"),
        ({"paused": False}, "bot.resume"),
        ({"paused": True, "name": "x"}, "bot.update"),
        ({"initial_budget_usd": Decimal("5")}, "bot.update"),
        ({}, "bot.update"),
    ],
)
def test_an_edit_of_paused_alone_is_a_pause_or_a_resume(changes, action):
    assert audit.bot_edit_action(changes) == action


def test_a_state_is_json_without_secrets_and_money_stays_a_decimal_string():
    bot_id = uuid.uuid4()
    columns = (
        "bot_id",
        "initial_budget_usd",
        "webhook_secret_hash",
        "token_hash",
        "lookup_key",
        "created_at",
        "paused",
    )
    values = (bot_id, Decimal("100.50"), "sha256$aa$bb", "sha256$cc$dd", "ee", NOW, False)
    state = audit.state(_row(columns, values))
    assert state == {
        "bot_id": str(bot_id),
        "initial_budget_usd": "100.50",
        "created_at": NOW.isoformat(),
        "paused": False,
    }


def test_a_change_names_the_fields_the_caller_set():
    before = {"name": "a", "paused": False, "version": 1, "updated_at": "t1"}
    assert audit.describe_change(before, {**before, "paused": True, "version": 2, "updated_at": "t2"}) == (
        "paused: False -> True"
    )
    assert audit.describe_change(None, before) == "created"
    assert audit.describe_change(before, {**before, "version": 2}) == "no field changed"


def test_a_viewer_is_read_only_and_sees_only_its_owners_bots():
    owner = uuid.uuid4()
    viewer = auth.Principal(uuid.uuid4(), auth.Role.VIEWER, owner, "dashboards")
    assert viewer.read_only and viewer.owner_scope == owner
    assert viewer.may_manage(owner) and not viewer.may_manage(uuid.uuid4())
    assert not auth.Principal(uuid.uuid4(), auth.Role.USER, owner, "u").read_only
    assert viewer.actor == audit.Actor(viewer.token_id, "dashboards", "viewer")


def _row(columns: tuple[str, ...], values: tuple) -> sa.Row:
    """A row as a select returns it, without a database."""
    return result_tuple(list(columns))(values)


def test_the_database_knows_the_same_actions_and_roles():
    spec = importlib.util.spec_from_file_location(
        "migration_0008", Path(__file__).parents[1] / "migrations" / "versions" / "0008_token_roles_and_audit.py"
    )
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert set(re.findall(r"'([^']+)'", migration.ACTIONS)) == {a.value for a in audit.Action}
    assert set(re.findall(r"'([^']+)'", migration.ROLES)) == {r.value for r in auth.Role}
