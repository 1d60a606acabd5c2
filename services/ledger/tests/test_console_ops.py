"""The console's Ops pages over plain HTTP (in-process) on real Kafka and Postgres: admins only, a dry run's diff
before a confirm, the command signed with the key typed for it and the key kept nowhere, a refusal in one line, and a
command that runs long or gets no reply. A stand-in plays the reconciler on the admin topic (it checks signatures
like the reconciler, with `egis_common.admin_client`); the whole system's walk is tests/e2e/test_console_walk.py."""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from test_console import csrf_of, log_in

from egis_common import admin_client
from egis_common import contracts as c
from egis_common.contracts import ExchangeName
from egis_common.topics import ADMIN_COMMANDS, ADMIN_REPLIES, encode, key_for
from egis_localinfra.pytest_plugin import admin_publish
from ledger import repository as repo
from ledger.adapters.console import repairs
from ledger.adapters.http import create_http_app

pytestmark = pytest.mark.infra
KEYS = {"ops-ann": "ann-key-" + uuid.uuid4().hex, "ops-slow": "slow-key-" + uuid.uuid4().hex}
SILENT = "ops-silent"  # the stand-in never answers this operator
PAPER = c.AdminCommandName.RECONCILE_PAPER_POSITIONS.value


def paper_lines(confirm: bool) -> list[dict]:
    astray = {
        "account": "paper-one",
        "symbol": "ETHUSDT",
        "action": "close",
        "found": {"qty": "0.003", "entry_price": "2942.67"},
        "expected": {"qty": "0", "entry_price": "0"},
        "would_change": True,
        "changed": confirm,
    }
    fine = {**astray, "account": "paper-two", "action": "none", "would_change": False, "changed": False}
    return [astray, fine]


class Reconciler:
    """Answers admin commands as the reconciler does: refused unless a known operator signed exactly this."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer, self.received = consumer, []
        self.release_slow = asyncio.Event()

    async def serve(self) -> None:
        while True:
            for records in (await self.consumer.getmany(timeout_ms=100)).values():
                for record in records:
                    command = ADMIN_COMMANDS.decode(record.value)
                    if command.operator_id in (*KEYS, SILENT):
                        self.received.append(command)
                        asyncio.get_running_loop().create_task(self.answer(command))

    async def answer(self, command: c.AdminCommand) -> None:
        key = KEYS.get(command.operator_id)
        if key is None:
            return
        if not hmac.compare_digest(admin_client.signature_for(command, key), command.signature):
            status, report = "refused", {"reason": "bad_signature"}
        else:
            if command.operator_id == "ops-slow":
                await self.release_slow.wait()
            lines = paper_lines(command.confirm)
            status = "ok"
            report = {"examined": 2, "would_change": 1, "changed": int(command.confirm), "positions": lines}
        reply = c.AdminReply(
            request_id=command.request_id,
            command=command.command,
            status=status,
            dry_run=not command.confirm,
            report=report,
        )
        await admin_publish(ADMIN_REPLIES.name, encode(reply), key_for(reply))


@pytest.fixture
async def reconciler(infra, test_database) -> AsyncIterator[Reconciler]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False, group_id=None, **infra.kafka_options()
    )
    await consumer.start()
    partitions = [TopicPartition(ADMIN_COMMANDS.name, p) for p in range(ADMIN_COMMANDS.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)
    stand_in = Reconciler(consumer)
    task = asyncio.create_task(stand_in.serve())
    yield stand_in
    stand_in.release_slow.set()
    task.cancel()
    await consumer.stop()


@pytest.fixture
async def console(ledger_runtime) -> AsyncIterator[callable]:
    """A client per visitor, on an app whose pages wait briefly, and whose commands wait 3 s for a reply."""
    app = create_http_app(ledger_runtime)
    app.state.console_runs = repairs.Runs(
        repairs.sender(ledger_runtime), max_command_seconds=900, page_wait_s=1.5, reply_wait_s=3
    )
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ledger.test", timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def admin_client_of(console, issue) -> httpx.AsyncClient:
    client = console()
    await log_in(client, await issue("admin", name="ops-admin"))
    return client


async def post_form(client: httpx.AsyncClient, page_url: str, **fields: str) -> httpx.Response:
    form = await client.get(page_url)
    assert form.status_code == 200, form.text
    return await client.post(page_url.split("?")[0], data={"csrf": csrf_of(form.text), **fields}, follow_redirects=True)


def one_line(page: str, css_class: str) -> str:
    found = re.search(rf'<p class="{css_class}"[^>]*>(.*?)</p>', page, re.S)
    assert found, f"no {css_class} line on the page"
    return html.unescape(" ".join(found[1].split()))


async def test_a_user_or_a_viewer_gets_no_ops_page_and_sees_no_ops_link(console, issue, make_bot):
    user = await issue("user", name="ops-user")
    viewer = await issue("viewer", uuid.UUID(user["owner_id"]), name="ops-viewer")
    bot = await make_bot(owner_id=uuid.UUID(user["owner_id"]))
    for caller in (user, viewer):
        client = console()
        await log_in(client, caller)
        listed = await client.get("/console/")
        detail = await client.get(f"/console/bots/{bot.bot_id}")
        assert 'href="/console/ops"' not in listed.text + detail.text and "Sync Paper State" not in detail.text
        for url in ("/console/ops", f"/console/ops/{PAPER}"):
            assert (await client.get(url)).status_code == 403, url
        csrf = csrf_of(listed.text)
        sent = await client.post(
            f"/console/ops/{PAPER}", data={"csrf": csrf, "operator_id": "ops-ann", "operator_key": KEYS["ops-ann"]}
        )
        assert sent.status_code == 403


async def test_an_admin_sees_ops_and_sync_paper_state_on_a_paper_bot_only(console, issue, make_bot):
    client = await admin_client_of(console, issue)
    paper = await make_bot()
    binance = await make_bot(exchange=ExchangeName.BINANCE_USDM)
    assert 'href="/console/ops"' in (await client.get("/console/")).text
    index = await client.get("/console/ops")
    for title in ("Drift report", "Resolve pending", "Sync wrong closed positions", "Sync Paper State"):
        assert f">{title}</h2>" in index.text
    assert f'href="/console/ops/{PAPER}?bot={paper.bot_id}"' in (await client.get(f"/console/bots/{paper.bot_id}")).text
    assert "Sync Paper State" not in (await client.get(f"/console/bots/{binance.bot_id}")).text
    form = await client.get(f"/console/ops/{PAPER}?bot={paper.bot_id}")
    assert 'type="password"' in form.text and 'autocomplete="off"' in form.text
    assert f'href="/console/bots/{paper.bot_id}"' in form.text
    assert (await client.get("/console/ops/no-such-command")).status_code == 404
    forged = await client.post(f"/console/ops/{PAPER}", data={"operator_id": "ops-ann", "operator_key": "k"})
    assert forged.status_code == 403  # no CSRF token


async def test_a_dry_run_shows_the_diff_then_a_confirm_applies_it_and_the_key_is_kept_nowhere(
    ledger_runtime, console, issue, reconciler, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    client = await admin_client_of(console, issue)
    key = KEYS["ops-ann"]
    dry = await post_form(client, f"/console/ops/{PAPER}", operator_id="ops-ann", operator_key=key)
    assert dry.status_code == 200 and "/console/ops/runs/" in str(dry.url)
    assert one_line(dry.text, "notice outcome") == "1 would change. Nothing is changed until you confirm."
    assert "paper-one" in dry.text and "0.003 @ 2942.67" in dry.text and "paper-two" not in dry.text
    assert "1 more examined, with nothing to change." in dry.text
    [sent] = reconciler.received
    assert (sent.operator_id, sent.confirm, sent.bot_id) == ("ops-ann", False, None)
    assert sent.signature == admin_client.signature_for(sent, key)  # signed with the key typed, by the server

    # A confirm names the dry run it follows: without it, or after another's, it is refused.
    csrf = csrf_of(dry.text)
    bare = await client.post(
        f"/console/ops/{PAPER}", data={"csrf": csrf, "confirm": "yes", "operator_id": "ops-ann", "operator_key": key}
    )
    assert bare.status_code == 403 and "dry run first" in bare.text
    after = re.search(r'name="after" value="([^"]+)"', dry.text)[1]
    done = await client.post(
        f"/console/ops/{PAPER}",
        data={"csrf": csrf, "confirm": "yes", "after": after, "operator_id": "ops-ann", "operator_key": key},
        follow_redirects=True,
    )
    assert one_line(done.text, "notice outcome") == "Done: 1 changed."
    assert "Sync Paper State: confirmed" in done.text and "paper-one" in done.text
    assert [m.confirm for m in reconciler.received] == [False, True]

    # The key is nowhere: not in a page, the session's row, or a log line.
    async with ledger_runtime.engine.connect() as conn:
        sessions = (await conn.execute(sa.select(repo.console_sessions))).all()
    assert key not in repr(sessions)
    assert key not in dry.text + done.text + bare.text
    logged = capsys.readouterr()
    assert key not in logged.out + logged.err + caplog.text


async def test_a_refused_command_says_why_in_one_line(console, issue, reconciler):
    client = await admin_client_of(console, issue)
    refused = await post_form(client, f"/console/ops/{PAPER}", operator_id="ops-ann", operator_key="not-anns-key")
    assert one_line(refused.text, "error") == (
        "The reconciler refused the command: that key is not this operator's key."
    )
    assert "Confirm" not in refused.text and "Traceback" not in refused.text
    empty = await post_form(client, f"/console/ops/{PAPER}", operator_id="", operator_key="")
    assert empty.status_code == 422 and "Name the operator you sign as." in empty.text


async def test_a_long_command_shows_it_runs_then_its_result_and_no_reply_is_one_line(console, issue, reconciler):
    client = await admin_client_of(console, issue)
    slow = await post_form(client, f"/console/ops/{PAPER}", operator_id="ops-slow", operator_key=KEYS["ops-slow"])
    assert slow.status_code == 200 and one_line(slow.text, "notice running").startswith("Running: sent")
    assert "Check again" in slow.text
    reconciler.release_slow.set()
    again = await client.get(str(slow.url))
    assert one_line(again.text, "notice outcome") == "1 would change. Nothing is changed until you confirm."

    silent = await post_form(client, f"/console/ops/{PAPER}", operator_id=SILENT, operator_key="any")
    for _ in range(4):  # each page waits 1.5 s, the command 3 s for its reply
        if "Running: sent" not in silent.text:
            break
        silent = await client.get(str(silent.url))
    assert one_line(silent.text, "error").startswith("No reply within 3 s (request ")
    assert "Traceback" not in silent.text
