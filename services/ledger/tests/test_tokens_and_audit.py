"""Roles, expiry, token listing and the audit trail, through the management API on the real database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from ledger_helpers import create, headers, ledger_state, new_bot, reserve

from egis_common.migrations import alembic_config
from egis_localinfra.testing import eventually
from ledger import auth
from ledger import repository as repo

pytestmark = pytest.mark.infra

READS = ("", "/{bot_id}", "/{bot_id}/budget", "/{bot_id}/positions")


async def writes(api) -> list[tuple[str, str]]:
    """Every write the API offers, from its own OpenAPI document, so a new one is covered here too."""
    document = (await api.get("/openapi.json")).json()
    return [(method.upper(), path) for path, ops in document["paths"].items() for method in ops if method != "get"]


async def audit_of(runtime, **subject) -> list:
    column, value = next(iter(subject.items()))
    async with runtime.engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    sa.select(repo.audit_log)
                    .where(repo.audit_log.c[column] == uuid.UUID(str(value)))
                    .order_by(repo.audit_log.c.audit_id)
                )
            ).all()
        )


async def token_row(runtime, token_id) -> sa.Row:
    async with runtime.engine.connect() as conn:
        return (
            await conn.execute(sa.select(repo.api_tokens).where(repo.api_tokens.c.token_id == uuid.UUID(token_id)))
        ).one()


async def test_a_viewer_reads_its_owners_bots_and_every_write_is_403(ledger_runtime, ledger, api, issue):
    owner = await issue()
    viewer = await issue("viewer", uuid.UUID(owner["owner_id"]))
    bot = await create(api, owner)
    async with ledger_runtime.uow.begin() as conn:
        await ledger.reserve(conn, reserve(uuid.UUID(bot["bot_id"]), account=bot["exchange_account"]))
    for path in READS:
        response = await api.get("/v1/bots" + path.format(bot_id=bot["bot_id"]), headers=headers(viewer))
        assert response.status_code == 200, (path, response.text)
        assert (
            response.json()
            == (await api.get("/v1/bots" + path.format(bot_id=bot["bot_id"]), headers=headers(owner))).json()
        )
    before = await ledger_state(ledger_runtime)
    operations = await writes(api)
    assert {("POST", "/v1/bots"), ("PATCH", "/v1/bots/{bot_id}"), ("DELETE", "/v1/bots/{bot_id}")} <= set(operations)
    for method, path in operations:
        body = new_bot() if method == "POST" else {"paused": True}
        response = await api.request(
            method, path.format(bot_id=bot["bot_id"], token_id=owner["id"]), json=body, headers=headers(viewer)
        )
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["reason"] == "read_only_token" and "viewer" in response.json()["detail"]
    assert await ledger_state(ledger_runtime) == before


async def test_a_viewer_or_a_user_cannot_see_another_owners_bot(ledger_runtime, api, issue):
    alice = await issue()
    bobs_viewer, bob = await issue("viewer"), await issue()
    bot_id = (await create(api, alice))["bot_id"]
    for caller in (bobs_viewer, bob):
        for path in READS[1:]:
            response = await api.get("/v1/bots" + path.format(bot_id=bot_id), headers=headers(caller))
            assert (response.status_code, response.json()["reason"]) == (404, "bot_not_found"), path
        assert bot_id not in (await api.get("/v1/bots", headers=headers(caller))).text


async def test_an_expired_token_is_refused_like_an_unknown_or_revoked_one(ledger_runtime, api, issue):
    expiring, revoked, live = await issue(), await issue(), await issue()
    bot_id = (await create(api, live))["bot_id"]
    async with ledger_runtime.engine.begin() as conn:
        await conn.execute(
            repo.api_tokens.update()
            .where(repo.api_tokens.c.token_id == uuid.UUID(expiring["id"]))
            .values(
                created_at=datetime.now(UTC) - timedelta(hours=2), expires_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
        assert await auth.revoke_token(conn, uuid.UUID(revoked["id"]))
    unknown = {"Authorization": f"Bearer {auth.TOKEN_PREFIX}{uuid.uuid4().hex}"}
    before = await ledger_state(ledger_runtime)
    for method, path, body in [
        ("GET", "", None),
        ("GET", f"/{bot_id}", None),
        ("PATCH", f"/{bot_id}", {"paused": True}),
        ("POST", "", new_bot()),
    ]:
        answers = [
            await api.request(method, f"/v1/bots{path}", json=body, headers=sent)
            for sent in (headers(expiring), headers(revoked), unknown)
        ]
        assert {a.status_code for a in answers} == {401}, (method, path)
        assert all(a.content == answers[-1].content and a.headers["www-authenticate"] == "Bearer" for a in answers)
    assert await ledger_state(ledger_runtime) == before
    assert (await token_row(ledger_runtime, expiring["id"])).last_used_at is None


async def test_a_token_that_expires_later_works_until_then(ledger_runtime, api, issue):
    expires_at = datetime.now(UTC) + timedelta(seconds=4)
    soon = await issue(expires_at=expires_at)
    assert (await api.get("/v1/bots", headers=headers(soon))).status_code == 200

    async def refused():
        return (await api.get("/v1/bots", headers=headers(soon))).status_code == 401

    await eventually(refused, timeout=15, what="the token refused once expired")
    assert datetime.now(UTC) >= expires_at


async def test_the_database_refuses_an_expiry_before_creation_and_an_unknown_role(ledger_runtime, issue):
    token = await issue()
    for values, constraint in [
        ({"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}, "api_tokens_expires_after_creation"),
        ({"role": "root"}, "api_tokens_role_known"),
    ]:
        with pytest.raises(sa.exc.IntegrityError, match=constraint):
            async with ledger_runtime.engine.begin() as conn:
                await conn.execute(
                    repo.api_tokens.update().where(repo.api_tokens.c.token_id == uuid.UUID(token["id"])).values(values)
                )


async def test_admins_list_tokens_without_their_secrets(ledger_runtime, api, issue):
    admin = await issue("admin", name="ops")
    expires_at = datetime.now(UTC) + timedelta(days=30)
    viewer = await issue("viewer", name="dashboards", expires_at=expires_at)
    response = await api.get("/v1/tokens", headers=headers(admin))
    assert response.status_code == 200
    listed = {t["token_id"]: t for t in response.json()}
    assert set(listed[viewer["id"]]) == {
        "token_id",
        "name",
        "role",
        "owner_id",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    assert (listed[viewer["id"]]["name"], listed[viewer["id"]]["role"]) == ("dashboards", "viewer")
    assert datetime.fromisoformat(listed[viewer["id"]]["expires_at"]) == expires_at
    assert listed[admin["id"]]["last_used_at"] is not None and listed[viewer["id"]]["last_used_at"] is None
    for token in (admin, viewer):
        stored = await token_row(ledger_runtime, token["id"])
        for secret in (token["token"], stored.token_hash, stored.lookup_key):
            assert secret not in response.text


async def test_last_used_is_noted_at_most_once_a_minute(ledger_runtime, api, issue):
    token = await issue()
    assert (await token_row(ledger_runtime, token["id"])).last_used_at is None
    await api.get("/v1/bots", headers=headers(token))
    first = (await token_row(ledger_runtime, token["id"])).last_used_at
    assert first is not None and datetime.now(UTC) - first < timedelta(seconds=30)
    await api.get("/v1/bots", headers=headers(token))
    assert (await token_row(ledger_runtime, token["id"])).last_used_at == first
    long_ago = datetime.now(UTC) - auth.LAST_USED_EVERY - timedelta(seconds=1)
    async with ledger_runtime.engine.begin() as conn:
        await conn.execute(
            repo.api_tokens.update()
            .where(repo.api_tokens.c.token_id == uuid.UUID(token["id"]))
            .values(last_used_at=long_ago)
        )
    await api.get("/v1/bots", headers=headers(token))
    assert (await token_row(ledger_runtime, token["id"])).last_used_at > first


async def test_every_bot_write_lands_one_audit_row_with_the_actor_and_both_states(ledger_runtime, api, issue):
    user = await issue(name="alice's laptop")
    created = await create(api, user, initial_budget_usd="100.50")
    bot_id, path = created["bot_id"], f"/v1/bots/{created['bot_id']}"
    for body in ({"paused": True}, {"paused": False}, {"name": "renamed", "initial_budget_usd": "250"}):
        assert (await api.patch(path, json=body, headers=headers(user))).status_code == 200
    assert (await api.delete(path, headers=headers(user))).status_code == 204
    rows = await audit_of(ledger_runtime, bot_id=bot_id)
    assert [r.action for r in rows] == ["bot.create", "bot.pause", "bot.resume", "bot.update", "bot.delete"]
    for row in rows:
        assert (str(row.actor_token_id), row.actor_name, row.actor_role) == (user["id"], "alice's laptop", "user")
        assert row.token_id is None and row.at is not None
        for state in (row.before, row.after):
            assert "webhook_secret_hash" not in (state or {}) and created["webhook_secret"] not in str(state)
    create_row, pause, resume, update, delete = rows
    assert create_row.before is None and create_row.after["initial_budget_usd"] == "100.50"
    assert (pause.before["paused"], pause.after["paused"], pause.after["version"]) == (False, True, 2)
    assert (resume.before["paused"], resume.after["paused"]) == (True, False)
    assert (update.before["name"], update.after["name"], update.after["initial_budget_usd"]) == (
        "api bot",
        "renamed",
        "250",
    )
    assert delete.before["deleted_at"] is None and delete.after["deleted_at"] is not None


async def test_a_refused_write_writes_no_audit_row(ledger_runtime, ledger, api, issue):
    user, other = await issue(), await issue()
    first, second = await create(api, user), await create(api, user)
    async with ledger_runtime.uow.begin() as conn:
        await ledger.reserve(conn, reserve(uuid.UUID(first["bot_id"]), account=first["exchange_account"]))
    before = await ledger_state(ledger_runtime)
    refused = [
        await api.patch(
            f"/v1/bots/{second['bot_id']}", json={"signal_key": first["signal_key"]}, headers=headers(user)
        ),
        await api.post("/v1/bots", json=new_bot(signal_key=first["signal_key"]), headers=headers(user)),
        await api.delete(f"/v1/bots/{first['bot_id']}", headers=headers(user)),
        await api.patch(f"/v1/bots/{first['bot_id']}", json={"paused": True}, headers=headers(other)),
        await api.patch(f"/v1/bots/{first['bot_id']}", json={"name": None}, headers=headers(user)),
    ]
    assert [r.status_code for r in refused] == [409, 409, 409, 404, 422]
    assert await ledger_state(ledger_runtime) == before


async def test_the_audit_trail_is_read_newest_first_by_bot_and_by_page(ledger_runtime, api, issue):
    admin, user = await issue("admin", name="ops"), await issue()
    bot_id = (await create(api, user))["bot_id"]
    for paused in (True, False, True):
        await api.patch(f"/v1/bots/{bot_id}", json={"paused": paused}, headers=headers(admin))
    other_bot = (await create(api, user))["bot_id"]
    page = (await api.get("/v1/audit", params={"bot_id": bot_id, "limit": 3}, headers=headers(admin))).json()
    assert [e["action"] for e in page] == ["bot.pause", "bot.resume", "bot.pause"]
    assert page[0]["actor_name"] == "ops" and page[0]["actor_role"] == "admin"
    rest = (
        await api.get("/v1/audit", params={"bot_id": bot_id, "before_id": page[-1]["audit_id"]}, headers=headers(admin))
    ).json()
    assert [e["action"] for e in rest] == ["bot.create"] and rest[0]["actor_token_id"] == user["id"]
    newest = (await api.get("/v1/audit", params={"limit": 1}, headers=headers(admin))).json()
    assert [(e["action"], e["bot_id"]) for e in newest] == [("bot.create", other_bot)]
    too_many = await api.get("/v1/audit", params={"limit": 501}, headers=headers(admin))
    assert too_many.status_code == 422


@pytest.mark.parametrize("path", ["/v1/tokens", "/v1/audit"])
async def test_admin_only_endpoints_refuse_a_user_a_viewer_and_no_token(api, issue, path):
    for role in ("user", "viewer"):
        response = await api.get(path, headers=headers(await issue(role)))
        assert (response.status_code, response.json()["reason"]) == (403, "admin_only"), role
    assert (await api.get(path)).status_code == 401


async def test_token_changes_made_in_the_database_are_audited_as_the_command_line(ledger_runtime, issue):
    token = await issue("viewer", name="grafana")
    async with ledger_runtime.engine.begin() as conn:
        assert await auth.revoke_token(conn, uuid.UUID(token["id"]))
        assert not await auth.revoke_token(conn, uuid.UUID(token["id"]))  # twice: no change, no row
    created, revoked = await audit_of(ledger_runtime, token_id=token["id"])
    for row in (created, revoked):
        assert (row.actor_token_id, row.actor_name, row.actor_role, row.bot_id) == (None, "cli", None, None)
        assert not {"token_hash", "lookup_key"} & set(row.after) and token["token"] not in str(row.after)
    assert (created.action, created.before, created.after["role"]) == ("token.create", None, "viewer")
    assert (revoked.action, revoked.before["revoked_at"]) == ("token.revoke", None)
    assert revoked.after["revoked_at"] is not None


async def test_the_migration_goes_down_and_up_again(ledger_runtime, test_database, issue):
    viewer, expiring = await issue("viewer"), await issue(expires_at=datetime.now(UTC) + timedelta(days=1))
    config = alembic_config("ledger", test_database.url)
    await asyncio.to_thread(command.downgrade, config, "ledger_0007")
    try:
        async with ledger_runtime.engine.connect() as conn:
            columns = {
                r[0]
                for r in await conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ledger' "
                        "AND table_name = 'api_tokens'"
                    )
                )
            }
            assert not {"expires_at", "last_used_at"} & columns
            assert await conn.scalar(sa.text("SELECT to_regclass('ledger.audit_log')")) is None
            kept = {
                str(r.token_id): r.revoked_at
                for r in await conn.execute(sa.text("SELECT token_id, revoked_at FROM ledger.api_tokens"))
            }
        assert viewer["id"] not in kept and kept[expiring["id"]] is not None  # never a token without its limit
    finally:
        await asyncio.to_thread(command.upgrade, config, "head")
        # Pooled connections hold statements prepared against the tables as they were; start afresh.
        await ledger_runtime.engine.dispose()
    async with ledger_runtime.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(repo.audit_log)) == 0
