"""The management API in-process (ASGI, no network) on the real database, asserting rows and outbox."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from ledger_helpers import create, headers, ledger_state, new_bot, reserve

from egis_common.money import format_decimal
from egis_common.secrets import verify_token
from egis_common.topics import BOTS
from ledger import auth
from ledger import repository as repo

pytestmark = pytest.mark.infra


async def snapshots_of(runtime, bot_id) -> list:
    table = runtime.outbox.table
    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(table.c.payload)
                .where(table.c.topic == BOTS.name, table.c.key == bot_id.encode())
                .order_by(table.c.id)
            )
        ).all()
    return [BOTS.decode(bytes(r.payload)) for r in rows]


async def test_create_shows_the_secret_once_and_stores_only_its_hash(ledger_runtime, api, issue):
    admin = await issue("admin")
    created = await create(api, admin, initial_budget_usd="100.50")
    secret, bot_id = created["webhook_secret"], created["bot_id"]
    assert secret.startswith("whk_") and created["initial_budget_usd"] == "100.50"
    assert created["owner_id"] == admin["owner_id"] and created["version"] == 1
    async with ledger_runtime.engine.connect() as conn:
        stored = await repo.bot_row(conn, uuid.UUID(bot_id))
    assert verify_token(secret, stored.webhook_secret_hash) and secret not in stored.webhook_secret_hash
    for response in (
        await api.get(f"/v1/bots/{bot_id}", headers=headers(admin)),
        await api.get("/v1/bots", headers=headers(admin)),
    ):
        assert response.status_code == 200
        assert secret not in response.text and stored.webhook_secret_hash not in response.text
        assert "webhook_secret" not in response.text
    assert [(s.version, s.deleted) for s in await snapshots_of(ledger_runtime, bot_id)] == [(1, False)]


async def test_a_user_sees_and_manages_only_its_own_live_bots(ledger_runtime, api, issue):
    alice, bob, admin = await issue(), await issue(), await issue("admin")
    kept, dropped = await create(api, alice), await create(api, alice)
    bobs = await create(api, bob)
    assert kept["owner_id"] == alice["owner_id"] and bobs["owner_id"] == bob["owner_id"]
    assert (await api.delete(f"/v1/bots/{dropped['bot_id']}", headers=headers(alice))).status_code == 204
    listed = (await api.get("/v1/bots", headers=headers(alice))).json()
    assert [b["bot_id"] for b in listed] == [kept["bot_id"]]
    everyone = {b["bot_id"] for b in (await api.get("/v1/bots", headers=headers(admin))).json()}
    assert {kept["bot_id"], bobs["bot_id"]} <= everyone and dropped["bot_id"] not in everyone
    assert (await api.get(f"/v1/bots/{dropped['bot_id']}", headers=headers(alice))).json()["reason"] == "bot_not_found"
    edited = await api.patch(f"/v1/bots/{bobs['bot_id']}", json={"paused": True}, headers=headers(admin))
    assert edited.status_code == 200 and edited.json()["paused"] is True


async def test_another_owners_bot_is_a_404_and_nothing_changes(ledger_runtime, api, issue):
    alice, bob = await issue(), await issue()
    bot_id = (await create(api, alice))["bot_id"]
    before = await ledger_state(ledger_runtime)
    for method, path, body in [
        ("GET", "", None),
        ("PATCH", "", {"paused": True}),
        ("DELETE", "", None),
        ("GET", "/budget", None),
        ("GET", "/positions", None),
    ]:
        response = await api.request(method, f"/v1/bots/{bot_id}{path}", json=body, headers=headers(bob))
        assert (response.status_code, response.json()["reason"]) == (404, "bot_not_found"), (method, path)
    assert bot_id not in (await api.get("/v1/bots", headers=headers(bob))).text
    assert await ledger_state(ledger_runtime) == before


async def test_a_user_cannot_create_a_bot_for_another_owner_but_an_admin_can(ledger_runtime, api, issue):
    user, admin, other = await issue(), await issue("admin"), str(uuid.uuid4())
    before = await ledger_state(ledger_runtime)
    refused = await api.post("/v1/bots", json=new_bot(owner_id=other), headers=headers(user))
    assert (refused.status_code, refused.json()["reason"]) == (403, "owner_not_allowed")
    assert await ledger_state(ledger_runtime) == before
    assert (await create(api, admin, owner_id=other))["owner_id"] == other


async def test_editing_keeps_its_own_signal_key_and_a_duplicate_key_is_409(ledger_runtime, api, issue):
    user = await issue()
    first, second = await create(api, user), await create(api, user)
    edit = {
        "signal_key": first["signal_key"],
        "name": "renamed",
        "initial_budget_usd": "250.5",
        "exchange": "binance_usdm",
    }
    edited = await api.patch(f"/v1/bots/{first['bot_id']}", json=edit, headers=headers(user))
    assert edited.status_code == 200, edited.text
    assert {k: edited.json()[k] for k in edit} == edit and edited.json()["version"] == 2
    before = await ledger_state(ledger_runtime)
    taken = {"signal_key": first["signal_key"]}
    clash = await api.patch(f"/v1/bots/{second['bot_id']}", json=taken, headers=headers(user))
    again = await api.post("/v1/bots", json=new_bot(**taken), headers=headers(user))
    for response in (clash, again):
        assert (response.status_code, response.json()["reason"]) == (409, "duplicate_signal_key")
    assert await ledger_state(ledger_runtime) == before


async def test_delete_is_refused_while_a_position_is_active_and_a_deleted_key_is_reusable(
    ledger_runtime, ledger, api, issue
):
    user = await issue()
    busy, idle = await create(api, user), await create(api, user)
    async with ledger_runtime.uow.begin() as conn:
        outcome = await ledger.reserve(conn, reserve(uuid.UUID(busy["bot_id"]), account=busy["exchange_account"]))
    assert outcome.rejection is None
    before = await ledger_state(ledger_runtime)
    refused = await api.delete(f"/v1/bots/{busy['bot_id']}", headers=headers(user))
    assert (refused.status_code, refused.json()["reason"]) == (409, "bot_has_active_positions")
    assert "opening" in refused.json()["detail"] and await ledger_state(ledger_runtime) == before
    assert (await api.delete(f"/v1/bots/{idle['bot_id']}", headers=headers(user))).status_code == 204
    assert (await api.get(f"/v1/bots/{idle['bot_id']}", headers=headers(user))).status_code == 404
    assert (await create(api, user, signal_key=idle["signal_key"]))["signal_key"] == idle["signal_key"]
    snapshots = await snapshots_of(ledger_runtime, idle["bot_id"])
    assert [(s.version, s.deleted) for s in snapshots] == [(1, False), (2, True)]


async def test_budget_and_positions_are_the_ledgers_numbers_as_strings(ledger_runtime, ledger, api, issue):
    user = await issue()
    bot = await create(api, user, initial_budget_usd="100.50")
    bot_id = uuid.UUID(bot["bot_id"])
    async with ledger_runtime.uow.begin() as conn:
        outcome = await ledger.reserve(conn, reserve(bot_id, size="10.25", account=bot["exchange_account"]))
        expected = await ledger.budget(conn, bot_id)
    budget = (await api.get(f"/v1/bots/{bot_id}/budget", headers=headers(user))).json()
    assert budget == {
        "bot_id": str(bot_id),
        "initial_usd": "100.50",
        "reserved_open_usd": "0",
        "reserved_opening_usd": "10.25",
        "available_usd": "90.25",
    }
    assert budget["available_usd"] == format_decimal(expected.available_usd)
    assert Decimal(budget["reserved_opening_usd"]) == expected.reserved_opening_usd
    (position,) = (await api.get(f"/v1/bots/{bot_id}/positions", headers=headers(user))).json()
    assert position["position_id"] == str(outcome.created[0].position_id)
    assert (position["status"], position["requested_size_usd"], position["size_usd"]) == ("opening", "10.25", "0")


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic dXNlcjpwdw==", "Bearer egt_wrong", "Bearer egt_"])
async def test_a_request_without_a_valid_token_is_401_and_changes_nothing(ledger_runtime, api, issue, authorization):
    owner = await issue()
    bot_id = (await create(api, owner))["bot_id"]
    sent = {"Authorization": authorization} if authorization else {}
    await assert_refused_everywhere(ledger_runtime, api, sent, bot_id)


async def test_a_revoked_token_is_401_and_changes_nothing(ledger_runtime, api, issue):
    owner = await issue()
    bot_id = (await create(api, owner))["bot_id"]
    async with ledger_runtime.engine.begin() as conn:
        assert await auth.revoke_token(conn, uuid.UUID(owner["id"]))
    await assert_refused_everywhere(ledger_runtime, api, headers(owner), bot_id)


async def assert_refused_everywhere(runtime, api, sent: dict, bot_id: str) -> None:
    before = await ledger_state(runtime)
    for method, path, body in [
        ("POST", "", new_bot()),
        ("GET", "", None),
        ("GET", f"/{bot_id}", None),
        ("PATCH", f"/{bot_id}", {"paused": True}),
        ("DELETE", f"/{bot_id}", None),
        ("GET", f"/{bot_id}/budget", None),
        ("GET", f"/{bot_id}/positions", None),
    ]:
        response = await api.request(method, f"/v1/bots{path}", json=body, headers=sent)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer" and response.json()["reason"] == "unauthorized"
    assert await ledger_state(runtime) == before


@pytest.mark.parametrize(
    "body",
    [
        new_bot(initial_budget_usd=100.5),
        new_bot(default_order_size_usd=10),
        new_bot(initial_budget_usd="1e3"),
        new_bot(initial_budget_usd="-1"),
        new_bot(default_order_size_usd="0"),
        new_bot(exchange="kraken"),
        new_bot(strategy="grid"),
        new_bot(webhook_secret_hash="sha256$00$00"),
        new_bot(paused="yes"),
    ],
)
async def test_an_invalid_bot_is_422_and_changes_nothing(ledger_runtime, api, issue, body):
    admin = await issue("admin")
    before = await ledger_state(ledger_runtime)
    response = await api.post("/v1/bots", json=body, headers=headers(admin))
    assert response.status_code == 422, response.text
    assert await ledger_state(ledger_runtime) == before


async def test_an_edit_with_a_float_a_null_or_an_unknown_field_is_422(ledger_runtime, api, issue):
    user = await issue()
    bot_id = (await create(api, user))["bot_id"]
    before = await ledger_state(ledger_runtime)
    for body in ({"initial_budget_usd": 5.0}, {"name": None}, {"deleted_at": None}, {"owner_id": str(uuid.uuid4())}):
        response = await api.patch(f"/v1/bots/{bot_id}", json=body, headers=headers(user))
        assert response.status_code == 422, (body, response.text)
    assert await ledger_state(ledger_runtime) == before


async def test_the_openapi_document_describes_every_endpoint_and_the_bearer_scheme(api):
    document = (await api.get("/openapi.json")).json()
    operations = {(method.upper(), path): op for path, ops in document["paths"].items() for method, op in ops.items()}
    assert set(operations) == {
        ("POST", "/v1/bots"),
        ("GET", "/v1/bots"),
        ("GET", "/v1/bots/{bot_id}"),
        ("PATCH", "/v1/bots/{bot_id}"),
        ("DELETE", "/v1/bots/{bot_id}"),
        ("GET", "/v1/bots/{bot_id}/budget"),
        ("GET", "/v1/bots/{bot_id}/positions"),
        ("GET", "/v1/tokens"),
        ("POST", "/v1/tokens"),
        ("DELETE", "/v1/tokens/{token_id}"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/signals/{signal_id}"),
    }
    schemes = document["components"]["securitySchemes"]
    assert list(schemes) == ["HTTPBearer"]
    assert (schemes["HTTPBearer"]["type"], schemes["HTTPBearer"]["scheme"]) == ("http", "bearer")
    for key, op in operations.items():
        assert op["security"] == [{"HTTPBearer": []}] and "401" in op["responses"], key
        deleted = key == ("DELETE", "/v1/bots/{bot_id}")  # a revoked token is answered with its row
        success = op["responses"]["204" if deleted else "201" if key[0] == "POST" else "200"]
        assert deleted or "schema" in success["content"]["application/json"], key
    schemas = document["components"]["schemas"]
    for body in ("BotCreate", "BotEdit"):
        assert schemas[body]["additionalProperties"] is False
        assert schemas[body]["properties"]["initial_budget_usd"]["type"] == "string"
    assert {"BotOut", "BotCreated", "BudgetOut", "PositionOut", "Problem", "TokenOut", "AuditEntryOut"} <= set(schemas)
    assert not {"token", "token_hash", "lookup_key"} & set(schemas["TokenOut"]["properties"])
    for key, op in operations.items():
        assert ("403" in op["responses"]) == (key[0] != "GET" or key[1] in ("/v1/tokens", "/v1/audit")), key
    assert "token" in schemas["TokenCreated"]["properties"]
    assert "webhook_secret" in schemas["BotCreated"]["properties"]
    assert "webhook_secret" not in schemas["BotOut"]["properties"]


async def test_stop_percentages_are_created_edited_read_and_published(ledger_runtime, api, issue):
    user = await issue()
    created = await create(api, user, take_profit_pct="2", stop_loss_pct="1.5")
    bot_id = created["bot_id"]
    assert (created["take_profit_pct"], created["stop_loss_pct"]) == ("2", "1.5")
    plain = await create(api, user)
    assert (plain["take_profit_pct"], plain["stop_loss_pct"]) == (None, None)
    edited = await api.patch(
        f"/v1/bots/{bot_id}", json={"take_profit_pct": "1000", "stop_loss_pct": None}, headers=headers(user)
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["take_profit_pct"], edited.json()["stop_loss_pct"]) == ("1000", None)
    read = (await api.get(f"/v1/bots/{bot_id}", headers=headers(user))).json()
    assert (read["take_profit_pct"], read["stop_loss_pct"], read["version"]) == ("1000", None, 2)
    snapshots = await snapshots_of(ledger_runtime, bot_id)
    assert [(s.version, s.take_profit_pct, s.stop_loss_pct) for s in snapshots] == [
        (1, Decimal("2"), Decimal("1.5")),
        (2, Decimal("1000"), None),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"take_profit_pct": "0"},
        {"take_profit_pct": "-2"},
        {"stop_loss_pct": "0"},
        {"stop_loss_pct": "-0.5"},
        {"stop_loss_pct": "100"},
        {"take_profit_pct": "1000.01"},
        {"take_profit_pct": 2},
        {"stop_loss_pct": "1e1"},
    ],
)
async def test_a_zero_negative_or_out_of_range_percentage_is_422_and_changes_nothing(ledger_runtime, api, issue, body):
    user = await issue()
    bot_id = (await create(api, user, take_profit_pct="3", stop_loss_pct="2"))["bot_id"]
    before = await ledger_state(ledger_runtime)
    for method, path, sent in [("POST", "", new_bot(**body)), ("PATCH", f"/{bot_id}", body)]:
        response = await api.request(method, f"/v1/bots{path}", json=sent, headers=headers(user))
        assert response.status_code == 422, (method, response.text)
    assert await ledger_state(ledger_runtime) == before
    read = (await api.get(f"/v1/bots/{bot_id}", headers=headers(user))).json()
    assert (read["take_profit_pct"], read["stop_loss_pct"]) == ("3", "2")


@pytest.mark.parametrize(
    "column, value",
    [("take_profit_pct", "0"), ("take_profit_pct", "1000.5"), ("stop_loss_pct", "-1"), ("stop_loss_pct", "100")],
)
async def test_the_database_refuses_an_out_of_range_percentage_too(ledger_runtime, api, issue, column, value):
    bot_id = uuid.UUID((await create(api, await issue()))["bot_id"])
    with pytest.raises(sa.exc.IntegrityError, match="bots_.*_pct_range"):
        async with ledger_runtime.engine.begin() as conn:
            await conn.execute(repo.bots.update().where(repo.bots.c.bot_id == bot_id).values({column: Decimal(value)}))
