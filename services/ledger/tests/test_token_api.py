"""Admins create and revoke API tokens through the management API: the secret shown once, the rows, the audit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from ledger_helpers import headers

from egis_common.secrets import verify_token
from ledger import repository as repo

pytestmark = pytest.mark.infra


async def rows(runtime, table, **where) -> list:
    async with runtime.engine.connect() as conn:
        query = sa.select(table).where(*(table.c[k] == uuid.UUID(str(v)) for k, v in where.items()))
        return list((await conn.execute(query)).all())


async def token_count(runtime) -> int:
    async with runtime.engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(repo.api_tokens))


async def test_an_admin_creates_a_token_that_works_and_is_shown_once(ledger_runtime, api, issue):
    admin = await issue("admin", name="ops")
    owner = str(uuid.uuid4())
    response = await api.post(
        "/v1/tokens", json={"name": "alice", "role": "user", "owner_id": owner}, headers=headers(admin)
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["name"], created["role"], created["owner_id"], created["revoked_at"]) == (
        "alice",
        "user",
        owner,
        None,
    )
    assert created["token"].startswith("egt_") and created["expires_at"] is None
    (row,) = await rows(ledger_runtime, repo.api_tokens, token_id=created["token_id"])
    assert verify_token(created["token"], row.token_hash) and created["token"] not in (row.token_hash, row.lookup_key)
    alice = {"Authorization": f"Bearer {created['token']}"}
    bot = await api.post(
        "/v1/bots",
        json={
            "name": "alice's bot",
            "signal_key": f"k-{uuid.uuid4().hex}",
            "exchange": "paper",
            "exchange_account": "a",
            "initial_budget_usd": "100",
            "default_order_size_usd": "10",
        },
        headers=alice,
    )
    assert bot.status_code == 201 and bot.json()["owner_id"] == owner
    listed = await api.get("/v1/tokens", headers=headers(admin))
    assert created["token_id"] in listed.text and created["token"] not in listed.text
    (audited,) = await rows(ledger_runtime, repo.audit_log, token_id=created["token_id"])
    assert (audited.action, str(audited.actor_token_id), audited.actor_name, audited.actor_role) == (
        "token.create",
        admin["id"],
        "ops",
        "admin",
    )
    assert audited.after["role"] == "user" and created["token"] not in str(audited.after)


async def test_a_user_token_without_an_owner_starts_one_and_an_expiry_is_kept(api, issue):
    admin = await issue("admin")
    response = await api.post(
        "/v1/tokens", json={"name": "ci", "role": "user", "expires_in": "30d"}, headers=headers(admin)
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["owner_id"] not in (admin["owner_id"], None)
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"name": "dashboards", "role": "viewer"}, "invalid_token_request"),
        ({"name": "late", "role": "user", "expires_in": "2000-01-01T00:00:00"}, "invalid_token_request"),
        ({"name": "soon", "role": "user", "expires_in": "tomorrow"}, "invalid_token_request"),
    ],
)
async def test_a_bad_request_makes_no_token(ledger_runtime, api, issue, body, reason):
    admin = await issue("admin")
    before = await token_count(ledger_runtime)
    response = await api.post("/v1/tokens", json=body, headers=headers(admin))
    assert (response.status_code, response.json()["reason"]) == (422, reason), response.text
    assert await token_count(ledger_runtime) == before


async def test_an_unknown_role_is_a_422(ledger_runtime, api, issue):
    admin = await issue("admin")
    before = await token_count(ledger_runtime)
    response = await api.post("/v1/tokens", json={"name": "x", "role": "root"}, headers=headers(admin))
    assert response.status_code == 422 and await token_count(ledger_runtime) == before


async def test_only_an_admin_creates_or_revokes(ledger_runtime, api, issue):
    target = await issue("user")
    before = await token_count(ledger_runtime)
    for role, reason in (("user", "admin_only"), ("viewer", "read_only_token")):
        caller = headers(await issue(role))
        before = await token_count(ledger_runtime)
        made = await api.post("/v1/tokens", json={"name": "mine", "role": "admin"}, headers=caller)
        revoked = await api.delete(f"/v1/tokens/{target['id']}", headers=caller)
        for answer in (made, revoked):
            assert (answer.status_code, answer.json()["reason"]) == (403, reason), (role, answer.text)
        assert await token_count(ledger_runtime) == before
    assert (await api.post("/v1/tokens", json={"name": "x", "role": "admin"})).status_code == 401
    assert (await api.delete(f"/v1/tokens/{target['id']}")).status_code == 401
    (row,) = await rows(ledger_runtime, repo.api_tokens, token_id=target["id"])
    assert row.revoked_at is None


async def test_an_admin_revokes_a_token_once_and_it_is_refused_from_then_on(ledger_runtime, api, issue):
    admin, user = await issue("admin", name="ops"), await issue("user")
    assert (await api.get("/v1/bots", headers=headers(user))).status_code == 200
    first = await api.delete(f"/v1/tokens/{user['id']}", headers=headers(admin))
    assert first.status_code == 200, first.text
    assert first.json()["revoked_now"] is True and first.json()["revoked_at"] is not None
    assert (await api.get("/v1/bots", headers=headers(user))).status_code == 401
    again = await api.delete(f"/v1/tokens/{user['id']}", headers=headers(admin))
    assert again.status_code == 200 and again.json()["revoked_now"] is False
    assert again.json()["revoked_at"] == first.json()["revoked_at"]
    created, revoked = await rows(ledger_runtime, repo.audit_log, token_id=user["id"])  # the second made none
    assert (revoked.action, str(revoked.actor_token_id), revoked.actor_name) == ("token.revoke", admin["id"], "ops")
    assert created.action == "token.create"
    missing = await api.delete(f"/v1/tokens/{uuid.uuid4()}", headers=headers(admin))
    assert (missing.status_code, missing.json()["reason"]) == (404, "token_not_found")
