"""`egis signals show` against a real ledger: its API on loopback, the journal in real Postgres."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import clean_env, egis, one_line_error  # noqa: E402
from test_with_a_ledger import create_bot, ledger_url, new_token  # noqa: E402, F401 - ledger_url is a fixture

from egis_common.contracts import SignalAction, SignalJournaled, SignalOutcome  # noqa: E402
from ledger import journal  # noqa: E402

pytestmark = pytest.mark.infra


@pytest.fixture
async def admin_env(ledger_runtime, ledger_url, tmp_path):  # noqa: F811 - the fixture above, by name
    token = await new_token(ledger_runtime)
    return clean_env(tmp_path, EGIS_LEDGER_URL=ledger_url, EGIS_LEDGER_TOKEN=token.token)


async def journalled(runtime, *entries: SignalJournaled) -> None:
    async with runtime.engine.begin() as conn:
        await journal.record(conn, list(entries))


async def test_a_skipped_signal_shows_its_reason_as_a_table_and_as_json(ledger_runtime, admin_env):
    bot = await create_bot(admin_env)
    signal_id = uuid.uuid4()
    skipped = SignalJournaled(
        outcome=SignalOutcome.SKIPPED,
        signal_id=signal_id,
        bot_id=uuid.UUID(bot["bot_id"]),
        reason="bot_paused",
        detail="bot version 2 is paused",
        action=SignalAction.OPEN_LONG,
        symbol="ETHUSDT",
        received_at=datetime.now(UTC),
    )
    duplicate = skipped.model_copy(update={"message_id": uuid.uuid4(), "outcome": SignalOutcome.DUPLICATE})
    await journalled(ledger_runtime, skipped, duplicate)

    shown = await egis("signals", "show", str(signal_id), env=admin_env)
    assert shown.code == 0, shown
    assert f"signal {signal_id}: accepted, skipped (bot_paused: bot version 2 is paused)" in shown.out
    assert "1 duplicate post(s) of it since" in shown.out
    as_json = await egis("signals", "show", str(signal_id), "--json", env=admin_env)
    fate = json.loads(as_json.out)
    assert (fate["status"], fate["outcome"], fate["reason"], fate["duplicates"]) == (
        "accepted",
        "skipped",
        "bot_paused",
        1,
    )
    assert (fate["intent"], fate["orders"], fate["position"]) == (None, [], None)


async def test_an_unknown_signal_or_no_ledger_is_one_line_and_its_exit_code(admin_env, tmp_path):
    unknown = await egis("signals", "show", str(uuid.uuid4()), env=admin_env)
    assert "404" in one_line_error(unknown, 1)
    down = await egis(
        "signals",
        "show",
        str(uuid.uuid4()),
        env=clean_env(tmp_path, EGIS_LEDGER_URL="http://127.0.0.1:9", EGIS_LEDGER_TOKEN="x"),
    )
    assert "does not answer" in one_line_error(down, 3)
