"""Admin replies in parts: split under the size limit, every part with the summary, joined back whole. Pure."""

from __future__ import annotations

import random
import uuid

from reconciler_helpers import admin_command

from egis_common import contracts as c
from egis_common.admin_client import assembled
from egis_common.topics import encode
from reconciler.domain import paged

LIMIT = 4096


def drift_report(lines: int) -> dict:
    return {
        "positions_examined": 3 * lines,
        "by_kind": {"closed_without_close_facts": lines},
        "drift": [
            {
                "position_id": str(uuid.uuid4()),
                "bot_id": str(uuid.uuid4()),
                "kind": "closed_without_close_facts",
                "missing": ["close_price", "closed_at"],
            }
            for _ in range(lines)
        ],
    }


def test_a_report_that_fits_is_one_reply():
    command = admin_command(c.AdminCommandName.DRIFT_REPORT)
    report = drift_report(3)
    [reply] = paged(command, "ok", report, LIMIT)
    assert (reply.part, reply.parts, reply.report, reply.request_id) == (1, 1, report, command.request_id)


def test_a_large_report_comes_in_parts_under_the_limit_each_with_the_summary_and_joins_back_whole():
    command = admin_command(c.AdminCommandName.DRIFT_REPORT)
    report = drift_report(200)
    parts = paged(command, "ok", report, LIMIT)

    assert len(parts) > 1 and [p.part for p in parts] == list(range(1, len(parts) + 1))
    assert {p.parts for p in parts} == {len(parts)} and len({p.message_id for p in parts}) == len(parts)
    assert all(len(encode(p)) <= LIMIT for p in parts)
    summary = {k: v for k, v in report.items() if k != "drift"}
    assert all({k: v for k, v in p.report.items() if k != "drift"} == summary for p in parts)
    shuffled = random.sample(parts, len(parts))
    whole = assembled([c.AdminReply.model_validate_json(encode(p)) for p in shuffled])
    assert whole.report == report and whole.request_id == command.request_id and whole.status == "ok"


def test_a_line_larger_than_the_limit_goes_alone_and_every_list_is_split_in_order():
    command = admin_command(c.AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, confirm=True)
    report = {
        "examined": 3,
        "positions": [{"n": 1}, {"n": 2, "evidence": "x" * 2 * LIMIT}, {"n": 3}],
        "pending": [{"n": n} for n in range(300)],
    }
    parts = paged(command, "ok", report, LIMIT)
    assert [p.report["positions"] for p in parts][:3] == [[{"n": 1}], [report["positions"][1]], [{"n": 3}]]
    assert assembled(parts).report == report and not parts[0].dry_run
