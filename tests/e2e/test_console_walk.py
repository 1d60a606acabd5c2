"""An operator's walk through the web console against the whole system as `./egis up` runs it (Kafka with logins
and ACLs, Postgres, the router, executor, ledger and reconciler as processes): log in, create a paper bot, post a
signal to the gateway, see the open position with its executed size and the requested hint, post it again and with a
wrong secret, close it, see the close facts and each signal's outcome; then, with the paper venue's row put astray
behind its back, run Sync Paper State as a dry run (its diff), confirm it (the repair), and dry-run again (nothing
left). Debian's Chromium driven by Playwright; axe-core on every page; screenshots at 390 and 1280 px in
build/artifacts/console/."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import create_async_engine

from egis_localinfra import guards
from egis_venues.paper import tables as paper_tables

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "local" / "tests"))  # driving `egis-local` as an operator's shell would
from local_system import ledger_admin, post_signal, run_cli, system_env  # noqa: E402

pytestmark = pytest.mark.infra
CHROMIUM = Path("/usr/bin/chromium")  # Debian's, installed by ./egis (need_apt); Playwright's own download cannot work
ARTIFACTS = ROOT / "build" / "artifacts" / "console"
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 900}
SYMBOL = "ETHUSDT"


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[Path]:
    """The whole system from `egis-local up` in a state directory of its own; `down` afterwards."""
    state_dir = tmp_path_factory.mktemp("console-walk") / "local"
    up = run_cli(state_dir, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield state_dir
    finally:
        down = run_cli(state_dir, "down")
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: ./egis test installs Debian's chromium"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        await launched.close()


async def accessible(page: Page) -> None:
    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


async def shoot(page: Page, name: str) -> None:
    """The page at a phone's width, then at a desktop's."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, viewport in (("390", PHONE), ("1280", DESKTOP)):
        await page.set_viewport_size(viewport)
        await page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=True)
    await page.set_viewport_size(PHONE)


async def reloaded_until(page: Page, shows: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60) -> None:
    """The page reloaded until it shows what the system is still doing: a signal's way is asynchronous."""
    deadline = time.monotonic() + timeout_s
    while not await shows():
        assert time.monotonic() < deadline, f"{what} not shown within {timeout_s}s"
        await asyncio.sleep(0.5)
        await page.reload()


async def answered(page: Page) -> None:
    """A repair's page once the reconciler's reply is in (it says so while the command runs)."""
    deadline = time.monotonic() + 120
    while await page.locator("p.running").count():
        assert time.monotonic() < deadline, "no reply from the reconciler"
        await page.get_by_role("link", name="Check again").click()


async def sign(page: Page, operator_id: str, key: str) -> None:
    await page.get_by_label("Operator", exact=True).fill(operator_id)
    await page.get_by_label("Operator key").fill(key)


async def put_paper_row_astray(database_url: str, account: str) -> None:
    """The paper venue's position row says 0.003 ETH long although its fills add up to flat (the row was restored
    from an old backup, say): the drift Sync Paper State repairs."""
    engine = create_async_engine(database_url)
    assert engine.url.host in ("127.0.0.1", "localhost"), engine.url.host
    p = paper_tables.positions
    # The database of the system this module started in its own temporary state directory: the guard admits only
    # the session's ephemeral database, so this one connection is let through by name, on loopback only.
    try:
        with guards.admin_access():
            await _put_astray(engine, p, account)
    finally:
        await engine.dispose()


async def _put_astray(engine, p, account: str) -> None:
    async with engine.begin() as conn:
        changed = await conn.execute(
            p.update()
            .where(p.c.account == account, p.c.symbol == SYMBOL)
            .values(qty=sa.text("0.003"), entry_price=sa.text("2942.67"))
        )
        if changed.rowcount == 0:
            await conn.execute(
                p.insert().values(account=account, symbol=SYMBOL, qty=sa.text("0.003"), entry_price=sa.text("2942.67"))
            )


@pytest.mark.timeout(600)
async def test_an_admin_trades_a_paper_bot_and_syncs_paper_state_in_the_console(system, browser):
    env = system_env(system)
    url, operator_id, key = env["EGIS_LEDGER_URL"], env["EGIS_OPERATOR_ID"], env["EGIS_OPERATOR_KEY"]
    issued = ledger_admin(system, "create-token", "--role", "admin", "--name", "walk")
    token = next(line.split()[1] for line in issued.splitlines() if line.startswith("token: "))
    name, signal_key, account = "eth-walk", f"walk-{uuid.uuid4().hex[:8]}", f"paper-walk-{uuid.uuid4().hex[:6]}"

    context = await browser.new_context(viewport=PHONE)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    await page.goto(f"{url}/")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Bots", exact=True)).to_be_visible()
    await accessible(page)

    # Create a paper bot; its webhook secret is shown once.
    await page.get_by_role("link", name="New bot").click()
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Signal key").fill(signal_key)
    await page.get_by_label("Exchange account").fill(account)
    await page.get_by_label("Initial budget (USD)").fill("100")
    await page.get_by_label("Default order size (USD)").fill("10")
    await page.get_by_role("button", name="Create bot").click()
    secret = await page.get_by_label("Webhook secret").input_value()
    await accessible(page)
    await page.get_by_role("link", name="Open the bot").click()
    bot_url = page.url

    # A buy signal to the gateway, at the mark price the paper venue fills at.
    marked = run_cli(system, "mark-price", SYMBOL, "2942.67")
    assert marked.returncode == 0, marked.stdout + marked.stderr
    body = {"signal_key": signal_key, "secret": secret, "symbol": SYMBOL}
    buy = {**body, "action": "buy", "signal_id": f"walk-buy-{uuid.uuid4().hex[:8]}"}  # the alert's own id: dedup
    deadline = time.monotonic() + 30
    while (sent := post_signal(system, buy))[0] != 202:  # the gateway learns the bot first
        assert time.monotonic() < deadline, sent
        await asyncio.sleep(0.5)
    position = page.locator("article.position")

    async def open_shown() -> bool:
        return "open" in await position.locator(".badge").all_inner_texts()

    await reloaded_until(page, open_shown, "the open position")
    await expect(position.locator("dd.size")).to_have_text("$8.82801 (requested $10)")
    await expect(position).to_contain_text("0.003")
    await expect(position).to_contain_text("2942.67")
    await accessible(page)
    await shoot(page, "walk-bot-detail-open")

    # The same alert again, and a post with a wrong secret: the journal tells the bot's owner of both.
    assert post_signal(system, buy) == (200, {"signal_id": sent[1]["signal_id"], "status": "duplicate"})
    assert post_signal(system, {**buy, "secret": secret + "x"})[0] == 401

    # Close it at another price: the close facts.
    marked = run_cli(system, "mark-price", SYMBOL, "3000")
    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert post_signal(system, {**body, "action": "close"})[0] == 202

    async def closed_shown() -> bool:
        return "closed" in await position.locator(".badge").all_inner_texts()

    await reloaded_until(page, closed_shown, "the closed position")
    for fact in ("Closing order", "Close price", "Closed", "Realised PnL", "Fees"):
        await expect(position.get_by_text(fact, exact=True)).to_be_visible()
    await expect(position).to_contain_text("3000")
    await expect(position).to_contain_text("$0.17199")
    signals = page.locator("li.signal")

    async def four_signals_shown() -> bool:
        return await signals.count() == 4

    await reloaded_until(page, four_signals_shown, "the buy, its duplicate, the refused post and the close")
    await expect(signals.locator(".badge")).to_have_text(["accepted", "rejected", "duplicate", "accepted"])
    await expect(signals.nth(1)).to_contain_text("unauthorized: unknown signal key or wrong secret")
    await expect(signals.nth(2)).to_contain_text(f"open_long {SYMBOL}")
    await expect(signals.nth(2)).to_contain_text(sent[1]["signal_id"])
    await accessible(page)
    await shoot(page, "walk-bot-detail-closed")

    # The paper venue's row astray; a wrong key first: the reconciler's reason, in one line.
    await put_paper_row_astray(env["EGIS_DATABASE_URL"], account)
    await page.get_by_role("link", name="Sync Paper State").click()
    await expect(page.get_by_role("heading", name="Sync Paper State")).to_be_visible()
    await accessible(page)
    await sign(page, operator_id, key + "x")
    await page.get_by_role("button", name="Dry run").click()
    await answered(page)
    await expect(page.get_by_role("alert")).to_have_text(
        "The reconciler refused the command: that key is not this operator's key."
    )
    await accessible(page)

    # The dry run: the diff, and nothing changed yet.
    await page.get_by_role("link", name="Try again").click()
    await sign(page, operator_id, key)
    await page.get_by_role("button", name="Dry run").click()
    await answered(page)
    await expect(page.get_by_role("heading", name="Sync Paper State: dry run")).to_be_visible()
    await expect(page.locator("p.outcome")).to_have_text("1 would change. Nothing is changed until you confirm.")
    row = page.locator("table.diff tbody tr", has_text=account)
    await expect(row).to_contain_text("close")
    await expect(row).to_contain_text("0.003 @ 2942.67")
    await accessible(page)
    await shoot(page, "walk-sync-paper-state-dry-run")

    # Confirm: the repair, as the executor made it.
    await page.get_by_label("Operator key").fill(key)
    await page.get_by_role("button", name="Confirm: Sync Paper State").click()
    await answered(page)
    await expect(page.get_by_role("heading", name="Sync Paper State: confirmed")).to_be_visible()
    await expect(page.locator("p.outcome")).to_have_text("Done: 1 changed.")
    await expect(page.locator("table.diff tbody tr", has_text=account)).to_contain_text("close")
    await accessible(page)
    await shoot(page, "walk-sync-paper-state-confirmed")

    # A dry run again: nothing left.
    await page.get_by_role("link", name="Dry run again").click()
    await sign(page, operator_id, key)
    await page.get_by_role("button", name="Dry run").click()
    await answered(page)
    await expect(page.locator("p.outcome")).to_have_text("Nothing to change.")
    await expect(page.locator("table.diff")).to_have_count(0)
    await accessible(page)
    await shoot(page, "walk-sync-paper-state-again")

    await page.get_by_role("link", name="Back to the bot").click()
    assert page.url == bot_url
    await context.close()
