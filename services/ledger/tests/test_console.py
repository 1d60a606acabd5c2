"""The web console's rules over plain HTTP (in-process, no browser) on the real database: sessions, CSRF,
roles, and that its writes are the API's writes (the same audit rows). The browser walk is test_console_browser."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from ledger_helpers import create, fill_for, headers, ledger_state, open_position, pending_of, reserved, send

from egis_common import contracts as c
from egis_common.ids import client_order_id
from egis_common.secrets import verify_token
from egis_localinfra.testing import eventually
from ledger import auth
from ledger import repository as repo

pytestmark = pytest.mark.infra

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found[1]


async def log_in(client: httpx.AsyncClient, caller: dict[str, str]) -> httpx.Response:
    form = await client.get("/console/login")
    response = await client.post("/console/login", data={"csrf": csrf_of(form.text), "token": caller["token"]})
    assert response.status_code == 303 and response.headers["location"] == "/console/", response.text
    return response


async def page_csrf(client: httpx.AsyncClient) -> str:
    return csrf_of((await client.get("/console/")).text)


async def session_rows(runtime, token_id: str) -> list[sa.Row]:
    async with runtime.engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    sa.select(repo.console_sessions).where(repo.console_sessions.c.token_id == uuid.UUID(token_id))
                )
            ).all()
        )


async def audit_actions(runtime, bot_id) -> list[tuple[str, uuid.UUID | None]]:
    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(repo.audit_log.c.action, repo.audit_log.c.actor_token_id)
                .where(repo.audit_log.c.bot_id == uuid.UUID(str(bot_id)))
                .order_by(repo.audit_log.c.audit_id)
            )
        ).all()
    return [tuple(r) for r in rows]


async def test_home_sends_a_person_to_the_console_and_the_console_to_its_login(browser_like):
    client = browser_like()
    home = await client.get("/")
    assert (home.status_code, home.headers["location"]) == (303, "/console/")
    listed = await client.get("/console/")
    assert (listed.status_code, listed.headers["location"]) == (303, "/console/login")
    login = await client.get("/console/login")
    assert login.status_code == 200 and '<label for="f-token">API token</label>' in login.text
    assert (
        "script" not in login.headers["content-security-policy"]
        and "default-src 'none'" in login.headers["content-security-policy"]
    )
    css = await client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_login_opens_a_server_side_session_behind_a_strict_http_only_cookie(ledger_runtime, browser_like, issue):
    caller = await issue("user", name="ops-alice")
    client = browser_like()
    refused = await client.post(
        "/console/login",
        data={"csrf": csrf_of((await client.get("/console/login")).text), "token": caller["token"] + "x"},
    )
    assert refused.status_code == 401 and "not valid" in refused.text and "egis_console=" not in str(refused.headers)
    response = await log_in(client, caller)
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("egis_console="))
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= attributes and "secure" not in attributes
    session_id = cookie.split(";")[0].split("=", 1)[1]
    [row] = await session_rows(ledger_runtime, caller["id"])
    assert row.session_key == hashlib.sha256(session_id.encode()).hexdigest()  # the id itself is never stored
    assert session_id not in (row.session_key, row.csrf_token) and row.expires_at > row.created_at
    listed = await client.get("/console/")
    assert listed.status_code == 200 and "ops-alice" in listed.text and csrf_of(listed.text) == row.csrf_token

    secure = await log_in(browser_like("https://ledger.test"), caller)
    assert "secure" in secure.headers["set-cookie"].lower()


async def test_a_login_form_from_elsewhere_is_refused(ledger_runtime, browser_like, issue):
    caller = await issue()
    client = browser_like()
    await client.get("/console/login")  # has its own login cookie, but posts without the form's token
    response = await client.post("/console/login", data={"token": caller["token"]})
    assert response.status_code == 403
    assert await session_rows(ledger_runtime, caller["id"]) == []


async def test_every_post_needs_the_sessions_csrf_token(ledger_runtime, browser_like, api, issue):
    caller = await issue()
    bot = await create(api, caller)
    client = browser_like()
    await log_in(client, caller)
    before = await ledger_state(ledger_runtime)
    for form in (
        {},
        {"csrf": ""},
        {"csrf": "x" * 43},
        {"csrf": csrf_of((await browser_like().get("/console/login")).text)},
    ):
        response = await client.post(f"/console/bots/{bot['bot_id']}/pause", data=form)
        assert response.status_code == 403, form
    assert (await client.post("/console/logout")).status_code == 403
    assert await ledger_state(ledger_runtime) == before
    paused = await client.post(f"/console/bots/{bot['bot_id']}/pause", data={"csrf": await page_csrf(client)})
    assert paused.status_code == 303
    assert (await api.get(f"/v1/bots/{bot['bot_id']}", headers=headers(caller))).json()["paused"] is True
    assert (await audit_actions(ledger_runtime, bot["bot_id"]))[-1] == ("bot.pause", uuid.UUID(caller["id"]))


async def test_a_post_without_a_session_is_refused(ledger_runtime, browser_like, api, issue):
    caller = await issue()
    bot = await create(api, caller)
    before = await ledger_state(ledger_runtime)
    response = await browser_like().post(f"/console/bots/{bot['bot_id']}/delete", data={"csrf": "anything"})
    assert response.status_code == 403
    assert await ledger_state(ledger_runtime) == before


async def test_a_viewer_sees_no_write_control_and_a_forged_post_is_refused(ledger_runtime, browser_like, api, issue):
    owner = await issue()
    viewer = await issue("viewer", uuid.UUID(owner["owner_id"]))
    bot = await create(api, owner, name="watched bot")
    client = browser_like()
    await log_in(client, viewer)
    listed = (await client.get("/console/")).text
    detail = (await client.get(f"/console/bots/{bot['bot_id']}")).text
    assert "watched bot" in listed and "watched bot" in detail
    for html in (listed, detail):
        assert not re.search(r'action="/console/bots', html) and "/edit" not in html and "/delete" not in html
        assert "New bot" not in html
    assert (await client.get("/console/bots/new")).status_code == 403
    before = await ledger_state(ledger_runtime)
    csrf = await page_csrf(client)  # a valid session and token: the role alone refuses
    for path, form in [
        (f"/console/bots/{bot['bot_id']}/pause", {}),
        (f"/console/bots/{bot['bot_id']}/delete", {}),
        (f"/console/bots/{bot['bot_id']}/edit", {"name": "renamed"}),
        (
            "/console/bots",
            {
                "name": "new",
                "signal_key": "k",
                "exchange": "paper",
                "exchange_account": "a",
                "initial_budget_usd": "10",
                "default_order_size_usd": "1",
            },
        ),
    ]:
        response = await client.post(path, data={"csrf": csrf, **form})
        assert response.status_code == 403 and "reads only" in response.text, path
    assert await ledger_state(ledger_runtime) == before
    assert (await client.post("/console/logout", data={"csrf": csrf})).status_code == 303  # logging out is no write


async def test_a_user_sees_only_their_own_bots_and_an_admin_sees_every_bot(ledger_runtime, browser_like, api, issue):
    alice, bob, admin = await issue(), await issue(), await issue("admin")
    alices = await create(api, alice, name=f"alice-{uuid.uuid4().hex[:6]}")
    bobs = await create(api, bob, name=f"bob-{uuid.uuid4().hex[:6]}")
    client = browser_like()
    await log_in(client, alice)
    listed = (await client.get("/console/")).text
    assert alices["name"] in listed and bobs["name"] not in listed and bobs["bot_id"] not in listed
    for path in ("", "/edit", "/delete"):
        response = await client.get(f"/console/bots/{bobs['bot_id']}{path}")
        assert response.status_code == 404 and bobs["name"] not in response.text, path
    before = await ledger_state(ledger_runtime)
    refused = await client.post(f"/console/bots/{bobs['bot_id']}/delete", data={"csrf": await page_csrf(client)})
    assert refused.status_code == 404 and await ledger_state(ledger_runtime) == before
    admins = browser_like()
    await log_in(admins, admin)
    everyone = (await admins.get("/console/")).text
    assert alices["name"] in everyone and bobs["name"] in everyone


async def test_console_writes_are_the_apis_writes_in_the_audit_trail(ledger_runtime, browser_like, api, issue):
    caller = await issue()
    client = browser_like()
    await log_in(client, caller)
    csrf = await page_csrf(client)
    form = {
        "csrf": csrf,
        "name": "console bot",
        "signal_key": f"c-{uuid.uuid4().hex}",
        "exchange": "paper",
        "exchange_account": f"acct-{uuid.uuid4().hex[:8]}",
        "initial_budget_usd": "250.50",
        "default_order_size_usd": "10",
        "take_profit_pct": "",
        "stop_loss_pct": "2.5",
    }
    invalid = await client.post("/console/bots", data={**form, "initial_budget_usd": "-1"})
    assert invalid.status_code == 422 and "negative" in invalid.text and 'aria-invalid="true"' in invalid.text
    created = await client.post("/console/bots", data=form)
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    secret = re.search(r'id="secret"[^>]*value="(whk_[^"]+)"', created.text)[1]
    [bot] = [b for b in (await api.get("/v1/bots", headers=headers(caller))).json() if b["name"] == "console bot"]
    async with ledger_runtime.engine.connect() as conn:
        assert verify_token(secret, (await repo.bot_row(conn, uuid.UUID(bot["bot_id"]))).webhook_secret_hash)
    assert (bot["initial_budget_usd"], bot["take_profit_pct"], bot["stop_loss_pct"]) == ("250.50", None, "2.5")
    duplicate = await client.post("/console/bots", data=form)
    assert duplicate.status_code == 409 and "already used" in duplicate.text

    detail = await client.get(f"/console/bots/{bot['bot_id']}")
    assert secret not in detail.text and "$250.50" in detail.text
    edit = await client.get(f"/console/bots/{bot['bot_id']}/edit")
    assert 'value="250.50"' in edit.text
    saved = await client.post(
        f"/console/bots/{bot['bot_id']}/edit", data={**form, "name": "renamed bot", "stop_loss_pct": ""}
    )
    assert saved.headers["location"] == f"/console/bots/{bot['bot_id']}?notice=saved"
    unchanged = await client.post(
        f"/console/bots/{bot['bot_id']}/edit", data={**form, "name": "renamed bot", "stop_loss_pct": ""}
    )
    assert unchanged.headers["location"].endswith("notice=unchanged")
    assert (await client.post(f"/console/bots/{bot['bot_id']}/pause", data={"csrf": csrf})).status_code == 303
    assert (
        (await client.post(f"/console/bots/{bot['bot_id']}/resume", data={"csrf": csrf, "back": "detail"}))
        .headers["location"]
        .startswith(f"/console/bots/{bot['bot_id']}?")
    )
    confirm = await client.get(f"/console/bots/{bot['bot_id']}/delete")
    assert confirm.status_code == 200 and "Delete renamed bot?" in confirm.text
    deleted = await client.post(f"/console/bots/{bot['bot_id']}/delete", data={"csrf": csrf})
    assert deleted.headers["location"] == "/console/?notice=deleted"
    listed = (await client.get("/console/?notice=deleted")).text
    assert "The bot was deleted." in listed and "Deleted bots" in listed

    me = uuid.UUID(caller["id"])
    assert await audit_actions(ledger_runtime, bot["bot_id"]) == [
        ("bot.create", me),
        ("bot.update", me),
        ("bot.pause", me),
        ("bot.resume", me),
        ("bot.delete", me),
    ]
    async with ledger_runtime.engine.connect() as conn:
        last_update = (
            await conn.execute(
                sa.select(repo.audit_log.c.before, repo.audit_log.c.after).where(
                    repo.audit_log.c.bot_id == uuid.UUID(bot["bot_id"]), repo.audit_log.c.action == "bot.update"
                )
            )
        ).one()
    assert (last_update.before["name"], last_update.after["name"]) == ("console bot", "renamed bot")
    assert (last_update.before["stop_loss_pct"], last_update.after["stop_loss_pct"]) == ("2.5", None)


async def test_the_detail_shows_the_budget_functions_figures_and_a_positions_facts(
    ledger_runtime, ledger_events, browser_like, api, issue, make_bot
):
    caller = await issue()
    bot = await make_bot("100", owner_id=uuid.UUID(caller["owner_id"]))
    await open_position(ledger_runtime, ledger_events, bot, size="10", qty="0.003", price="2942.67")
    client = browser_like()
    await log_in(client, caller)
    budget = (await api.get(f"/v1/bots/{bot.bot_id}/budget", headers=headers(caller))).json()
    assert budget["available_usd"] == "91.17199"
    html = (await client.get(f"/console/bots/{bot.bot_id}")).text
    for figure in (budget["initial_usd"], budget["reserved_open_usd"], budget["available_usd"]):
        assert f"${figure}" in html
    assert '$8.82801 <span class="muted">(requested $10)</span>' in html and "2942.67" in html
    listed = (await client.get("/console/")).text
    row = listed[listed.index(f"/console/bots/{bot.bot_id}") :]
    assert "$91.17199" in row[:800] and "1 open" in row[:800]
    refused = await client.post(f"/console/bots/{bot.bot_id}/delete", data={"csrf": await page_csrf(client)})
    assert refused.status_code == 409 and "cannot be deleted yet" in refused.text
    assert (await api.get(f"/v1/bots/{bot.bot_id}", headers=headers(caller))).status_code == 200


def pending_section(html: str) -> str:
    start = html.index('id="pending-h"')
    return html[start : html.index("</section>", start)]


async def pending_rows(runtime, bot_id) -> dict[uuid.UUID, sa.Row]:
    table = repo.pending_reconciliations
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(sa.select(table).where(table.c.bot_id == bot_id))).all()
    return {row.intent_id: row for row in rows}


async def test_the_detail_lists_pending_reconciliations_until_their_intent_is_settled(
    ledger_runtime, ledger_events, browser_like, issue, make_bot
):
    owner, admin, stranger = await issue(), await issue("admin"), await issue()
    bot = await make_bot("100", owner_id=uuid.UUID(owner["owner_id"]))
    released, found, filled = [
        await reserved(ledger_runtime, ledger_events, bot, s) for s in ("ETHUSDT", "BTCUSDT", "SOLUSDT")
    ]
    ids = {a.intent_id: client_order_id(a.intent_id) for a in (released, found, filled)}
    client = browser_like()
    await log_in(client, owner)

    async def section() -> str:
        response = await client.get(f"/console/bots/{bot.bot_id}")
        assert response.status_code == 200
        return pending_section(response.text)

    async def listing(*intent_ids) -> str | None:
        shown = await section()
        return shown if all(ids[i] in shown for i in intent_ids) else None

    assert "None" in await section() and "(0)" in await section()
    first = pending_of(released)
    await send(ledger_runtime, first)
    await eventually(lambda: listing(released.intent_id), what="the pending order listed")
    # The same event redelivered, and a copy under a new message id (which the inbox lets through), then two more
    # of the bot's orders: once those are listed, the copies (on the same partition, before them) were handled.
    two_min_ago = datetime.now(UTC) - timedelta(minutes=2, seconds=5)
    await send(
        ledger_runtime, first, pending_of(released), pending_of(found, occurred_at=two_min_ago), pending_of(filled)
    )
    shown = await eventually(lambda: listing(found.intent_id, filled.intent_id), what="three pending orders listed")
    assert shown.count(ids[released.intent_id]) == 1 and "Pending reconciliations (3)" in shown
    assert "pending for 2 min" in shown and shown.count("pending for less than a minute") == 2
    assert "ETHUSDT" in shown and "open" in shown and "timeout: no answer from the exchange" in shown
    admins, strangers = browser_like(), browser_like()
    await log_in(admins, admin)
    await log_in(strangers, stranger)
    assert ids[found.intent_id] in pending_section((await admins.get(f"/console/bots/{bot.bot_id}")).text)
    refused = await strangers.get(f"/console/bots/{bot.bot_id}")
    assert refused.status_code == 404 and ids[found.intent_id] not in refused.text

    await send(
        ledger_runtime,
        c.ReleaseReservation(bot_id=bot.bot_id, intent_id=released.intent_id, reason="not_found_on_exchange"),
        c.ApplyFoundFill(
            bot_id=bot.bot_id,
            intent_id=found.intent_id,
            position_id=found.position_id,
            intent=c.IntentKind.OPEN,
            client_order_id=ids[found.intent_id],
            exchange_order_id="777",
            executed_qty=Decimal("0.0001"),
            avg_price=Decimal("90000"),
            fee_usd=Decimal("0.0035"),
            filled_at=datetime.now(UTC),
        ),
        fill_for(filled, "0.05", "200"),
    )

    async def all_settled() -> str | None:
        shown = await section()
        return shown if not any(order_id in shown for order_id in ids.values()) else None

    shown = await eventually(all_settled, what="every pending order settled")
    assert "Pending reconciliations (0)" in shown and "None" in shown
    rows = await pending_rows(ledger_runtime, bot.bot_id)
    assert {i: (r.settled_by, r.settled_at is not None) for i, r in rows.items()} == {
        released.intent_id: ("ReleaseReservation", True),
        found.intent_id: ("ApplyFoundFill", True),
        filled.intent_id: ("OrderFilled", True),
    }
    assert rows[released.intent_id].settled_detail == "not_found_on_exchange"
    assert rows[found.intent_id].pending_since == two_min_ago

    # A replay after the settlement lists nothing again: the intent no longer holds a reservation.
    later = await reserved(ledger_runtime, ledger_events, bot, "XRPUSDT")
    ids[later.intent_id] = client_order_id(later.intent_id)
    await send(ledger_runtime, pending_of(released), pending_of(later))
    shown = await eventually(lambda: listing(later.intent_id), what="a later pending order listed")
    assert ids[released.intent_id] not in shown and "Pending reconciliations (1)" in shown
    assert (await pending_rows(ledger_runtime, bot.bot_id))[released.intent_id].settled_by == "ReleaseReservation"


def test_a_pending_orders_age_reads_in_minutes_hours_and_days():
    from ledger.adapters.console.pages import pending_for

    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    ages = [pending_for(now - delta, now) for delta in (timedelta(seconds=59), timedelta(minutes=2, seconds=59))]
    ages += [pending_for(now - timedelta(hours=3, minutes=7), now), pending_for(now - timedelta(days=2, hours=5), now)]
    ages.append(pending_for(now + timedelta(seconds=30), now))  # a producer's clock a little ahead
    assert ages == [
        "pending for less than a minute",
        "pending for 2 min",
        "pending for 3 h 7 min",
        "pending for 2 d 5 h",
        "pending for less than a minute",
    ]


async def test_a_revoked_or_expired_token_or_session_ends_the_session(ledger_runtime, browser_like, issue):
    revoked, expired, timed_out = await issue(), await issue(), await issue()
    clients = {}
    for caller in (revoked, expired, timed_out):
        clients[caller["id"]] = browser_like()
        await log_in(clients[caller["id"]], caller)
    async with ledger_runtime.engine.begin() as conn:
        assert await auth.revoke_token(conn, uuid.UUID(revoked["id"]))
        await conn.execute(
            repo.api_tokens.update()
            .where(repo.api_tokens.c.token_id == uuid.UUID(expired["id"]))
            .values(expires_at=repo.api_tokens.c.created_at + sa.text("interval '1 millisecond'"))
        )
        await conn.execute(
            repo.console_sessions.update()
            .where(repo.console_sessions.c.token_id == uuid.UUID(timed_out["id"]))
            .values(expires_at=repo.console_sessions.c.created_at + sa.text("interval '1 millisecond'"))
        )
    assert await session_rows(ledger_runtime, revoked["id"]) == []  # revoking ends them at once
    for caller in (revoked, expired, timed_out):
        response = await clients[caller["id"]].get("/console/")
        assert (response.status_code, response.headers["location"]) == (303, "/console/login"), caller["id"]
        assert await session_rows(ledger_runtime, caller["id"]) == []


async def test_logout_deletes_the_session(ledger_runtime, browser_like, issue):
    caller = await issue()
    client = browser_like()
    response = await log_in(client, caller)
    stolen = response.cookies["egis_console"]
    out = await client.post("/console/logout", data={"csrf": await page_csrf(client)})
    assert (out.status_code, out.headers["location"]) == (303, "/console/login")
    assert await session_rows(ledger_runtime, caller["id"]) == []
    replayed = browser_like()
    replayed.cookies.set("egis_console", stolen, domain="ledger.test", path="/console")
    assert (await replayed.get("/console/")).headers["location"] == "/console/login"


def test_money_is_shown_as_exact_decimals():
    from ledger.adapters.console.pages import usd

    assert (usd(Decimal("8.82801")), usd(Decimal("-0.5")), usd(Decimal("10")), usd(None)) == (
        "$8.82801",
        "-$0.5",
        "$10",
        "—",
    )
