"""The web console in a real browser (Debian's Chromium driven by Playwright) against the ledger's HTTP app on a
loopback port, with the ledger's flow on real Kafka and Postgres. Screenshots at a phone's and a desktop's width go to
build/artifacts/console/; axe-core checks each page it visits (labels, contrast, names)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from ledger_helpers import open_position, pending_of, reserved, send
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from egis_common.http_server import HttpServer
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually
from ledger import repository as repo
from ledger.adapters.http import create_http_app

pytestmark = pytest.mark.infra

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, installed by ./egis (need_apt); Playwright's own download cannot work
ARTIFACTS = Path(__file__).resolve().parents[3] / "build" / "artifacts" / "console"
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 900}


@pytest.fixture
async def console_url(ledger_runtime):
    server = HttpServer(create_http_app(ledger_runtime), "127.0.0.1", 0)  # port 0: a free one
    await server.start()
    yield f"http://127.0.0.1:{server.port}"
    await server.stop()


@pytest.fixture
async def browser():
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: ./egis test installs Debian's chromium"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        await launched.close()


async def context_at(browser: Browser, viewport: dict) -> BrowserContext:
    context = await browser.new_context(viewport=viewport)
    context.set_default_timeout(10_000)
    return context


async def log_in(page: Page, url: str, token: str) -> None:
    await page.goto(f"{url}/")
    await expect(page).to_have_url(f"{url}/console/login")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Bots", exact=True)).to_be_visible()


async def accessible(page: Page) -> None:
    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


async def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


async def test_an_operator_walks_the_console(ledger_runtime, ledger_events, console_url, browser, issue, make_bot):
    alice = await issue("user", name="alice")
    viewer = await issue("viewer", uuid.UUID(alice["owner_id"]), name="auditor")
    bob = await issue("user", name="bob")
    bobs = await make_bot(owner_id=uuid.UUID(bob["owner_id"]))
    traded = await make_bot("100", owner_id=uuid.UUID(alice["owner_id"]))
    await open_position(ledger_runtime, ledger_events, traded, size="10", qty="0.003", price="2942.67")
    unsure = await make_bot("100", owner_id=uuid.UUID(alice["owner_id"]))
    unknown = await reserved(ledger_runtime, ledger_events, unsure, "BTCUSDT")
    await send(ledger_runtime, pending_of(unknown))

    async def recorded():
        async with ledger_runtime.engine.connect() as conn:
            return await repo.unsettled_of_bot(conn, unsure.bot_id)

    await eventually(recorded, what="the pending order recorded")
    name = f"walk-{uuid.uuid4().hex[:6]}"

    context = await context_at(browser, PHONE)
    page = await context.new_page()
    await page.goto(f"{console_url}/console/login")
    await accessible(page)
    await shoot(page, "login-390")
    await log_in(page, console_url, alice["token"])
    await expect(page.locator(f'a[href="/console/bots/{bobs.bot_id}"]')).to_have_count(0)

    # Create a bot; its webhook secret is shown once.
    await page.get_by_role("link", name="New bot").click()
    await accessible(page)
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Signal key").fill(f"sig-{uuid.uuid4().hex}")
    await page.get_by_label("Exchange account").fill(f"acct-{uuid.uuid4().hex[:8]}")
    await page.get_by_label("Initial budget (USD)").fill("100")
    await page.get_by_label("Default order size (USD)").fill("10")
    await page.get_by_role("button", name="Create bot").click()
    await expect(page.get_by_role("heading", name=f"{name} created")).to_be_visible()
    assert (await page.get_by_label("Webhook secret").input_value()).startswith("whk_")
    await page.get_by_role("link", name="Back to the bots").click()

    # Listed, live, with its whole budget available and nothing open.
    row = page.locator("li.bot", has_text=name)
    await expect(row).to_contain_text("live")
    await expect(row).to_contain_text("Available $100 of $100")
    await expect(row).to_contain_text("0 open")
    await accessible(page)
    await shoot(page, "bots-390")

    # Its detail, then pause it there.
    await row.get_by_role("link", name=name, exact=True).click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()
    await expect(page.locator(".budget")).to_contain_text("Available")
    await page.get_by_role("button", name=f"Pause {name}").click()
    await expect(page.get_by_role("status")).to_have_text("The bot is paused.")
    await expect(page.get_by_role("heading", name=name)).to_contain_text("paused")
    await expect(page.get_by_role("button", name=f"Resume {name}")).to_be_visible()

    # Delete behind the confirmation.
    await page.get_by_role("link", name=f"Delete {name}").click()
    await expect(page.get_by_role("heading", name=f"Delete {name}?")).to_be_visible()
    await accessible(page)
    await page.get_by_role("button", name=f"Delete {name}").click()
    await expect(page.get_by_role("status")).to_have_text("The bot was deleted.")
    await expect(page.locator("ul[aria-label='Bots'] li.bot", has_text=name)).to_have_count(0)
    await page.get_by_text("Deleted bots").click()
    await expect(page.locator("ul[aria-label='Deleted bots'] li.bot", has_text=name)).to_contain_text("deleted")

    # The traded bot's detail: the executed size with the requested hint, the budget it leaves.
    await page.goto(f"{console_url}/console/bots/{traded.bot_id}")
    position = page.locator("article.position")
    await expect(position).to_contain_text("$8.82801 (requested $10)")
    await expect(position).to_contain_text("0.003")
    await expect(position).to_contain_text("2942.67")
    await expect(position).to_contain_text("open")
    await expect(page.locator(".budget")).to_contain_text("$91.17199")
    await accessible(page)
    await shoot(page, "bot-detail-390")
    await page.set_viewport_size(DESKTOP)
    await shoot(page, "bot-detail-1280")
    await page.goto(f"{console_url}/console/")
    await shoot(page, "bots-1280")

    # A bot with an order whose outcome is unknown: a card for it under Pending reconciliations, on a phone too.
    await page.goto(f"{console_url}/console/bots/{unsure.bot_id}")
    card = page.locator("li.pending")
    await expect(card).to_have_count(1)
    for text in ("BTCUSDT", "open", client_order_id(unknown.intent_id), "timeout", "pending for less than a minute"):
        await expect(card).to_contain_text(text)
    await shoot(page, "bot-pending-1280")
    await page.set_viewport_size(PHONE)
    await accessible(page)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await shoot(page, "bot-pending-390")

    # A POST without the session's CSRF token is refused, even with the session's cookie.
    refused = await context.request.post(f"{console_url}/console/bots/{traded.bot_id}/pause", form={"back": "list"})
    assert refused.status == 403
    await context.close()

    # A viewer sees the owner's bots and no write control; a forged write with a valid CSRF token is refused.
    context = await context_at(browser, PHONE)
    page = await context.new_page()
    await log_in(page, console_url, viewer["token"])
    await expect(page.locator("li.bot", has_text=traded.name).first).to_be_visible()
    await expect(page.get_by_role("link", name="New bot")).to_have_count(0)
    for control in ("Pause", "Resume", "Edit", "Delete"):
        await expect(page.get_by_role("button", name=control)).to_have_count(0)
        await expect(page.get_by_role("link", name=control)).to_have_count(0)
    await page.goto(f"{console_url}/console/bots/{traded.bot_id}")
    await expect(page.get_by_role("button", name="Log out")).to_have_count(1)
    await expect(page.get_by_role("button")).to_have_count(1)  # logging out is all a viewer can post
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    forged = await context.request.post(
        f"{console_url}/console/bots/{traded.bot_id}/pause", form={"csrf": csrf, "back": "list"}
    )
    assert forged.status == 403 and "reads only" in await forged.text()
    await shoot(page, "viewer-detail-390")
    await context.close()

    async with ledger_runtime.engine.connect() as conn:
        assert (await repo.bot_row(conn, traded.bot_id)).paused is False  # neither refused write changed it
