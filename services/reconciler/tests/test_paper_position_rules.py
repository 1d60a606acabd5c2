"""The paper venue's positions from its fills, and what a row of its table needs to follow them. Pure."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from egis_common import contracts as c
from egis_venues.paper.lookup import PaperLookup
from egis_venues.paper.position_repair import (
    FLAT,
    Action,
    Fill,
    Holding,
    action,
    from_fills,
    repairs,
)
from egis_venues.port import Unknown
from reconciler.adapters.paper_repair import line
from reconciler.domain import completed, repair_command

D = Decimal


def fill(trade_id: int, side: str, qty: str, price: str, account: str = "a", symbol: str = "ETHUSDT") -> Fill:
    return Fill(trade_id, account, symbol, side, D(qty), D(price))


def test_fills_add_up_to_the_signed_quantity_and_the_average_entry_of_the_open_side():
    held = from_fills(
        [
            fill(1, "BUY", "0.01", "3000"),
            fill(2, "BUY", "0.01", "3100"),
            fill(3, "SELL", "0.005", "3200"),
            fill(4, "SELL", "1", "10", symbol="BTCUSDT"),
        ]
    )
    assert held[("a", "ETHUSDT")] == Holding(D("0.015"), D("3050"), trades=3, last_trade_id=3)
    assert held[("a", "BTCUSDT")] == Holding(D("-1"), D("10"), trades=1, last_trade_id=4)


def test_a_closed_position_is_flat_and_a_flip_opens_the_other_side_at_the_flipping_price():
    closed = from_fills([fill(1, "BUY", "0.01", "3000"), fill(2, "SELL", "0.01", "2900")])[("a", "ETHUSDT")]
    flipped = from_fills([fill(1, "BUY", "0.01", "3000"), fill(2, "SELL", "0.03", "2900")])[("a", "ETHUSDT")]
    assert (closed.qty, closed.entry_price, closed.is_open) == (0, 0, False)
    assert (flipped.qty, flipped.entry_price) == (D("-0.02"), D("2900"))


@pytest.mark.parametrize(
    "recorded,derived,expected",
    [
        (None, Holding(D("0.01"), D("3000")), Action.CREATE),
        (Holding(D(0), D(0)), Holding(D("0.01"), D("3000")), Action.CREATE),  # the venue keeps a closed row, flat
        (Holding(D("0.01"), D("3000")), FLAT, Action.CLOSE),
        (Holding(D("0.01"), D("3000")), Holding(D("0.02"), D("3000")), Action.UPDATE),
        (Holding(D("0.01"), D("3000")), Holding(D("0.01"), D("3050")), Action.UPDATE),
        (Holding(D("-0.01"), D("3000")), Holding(D("0.01"), D("3000")), Action.UPDATE),
        (Holding(D("0.0100"), D("3000.00")), Holding(D("0.01"), D("3000")), Action.NONE),  # numbers, not strings
        (Holding(D(0), D(0)), FLAT, Action.NONE),
        (None, FLAT, Action.NONE),
    ],
)
def test_each_row_gets_the_one_action_that_makes_it_follow_the_fills(recorded, derived, expected):
    assert action(recorded, derived) is expected


def test_every_pair_either_side_knows_is_examined_and_reported_with_what_was_found_and_expected():
    derived = {("a", "ETHUSDT"): Holding(D("0.02"), D("3050"), 2, 7)}
    recorded = {("b", "ETHUSDT"): Holding(D("-0.5"), D("100"))}
    found = repairs(derived, recorded)
    assert [(r.account, r.action) for r in found] == [("a", Action.CREATE), ("b", Action.CLOSE)]
    assert line(found[0]) == {
        "account": "a",
        "symbol": "ETHUSDT",
        "action": "create",
        "found": None,
        "expected": {"qty": "0.02", "entry_price": "3050"},
        "would_change": True,
        "changed": False,
        "evidence": {"trades": 2, "last_trade_id": "7"},
    }
    closed = line(found[1])
    assert (closed["found"], closed["expected"], closed["changed"]) == (
        {"qty": "-0.5", "entry_price": "100"},
        {"qty": "0", "entry_price": "0"},
        False,
    )


def test_the_executor_is_asked_for_the_lines_that_would_change_and_its_answer_says_which_did():
    lines = [
        line(r)
        for r in repairs(
            {("a", "ETHUSDT"): Holding(D("0.02"), D("3050"), 2, 7), ("c", "ETHUSDT"): Holding(D("1"), D("10"), 1, 8)},
            {("b", "ETHUSDT"): Holding(D("-0.5"), D("100")), ("c", "ETHUSDT"): Holding(D("1"), D("10"))},
        )
    ]
    request_id = uuid.uuid4()
    command = repair_command(request_id, lines)
    assert [(p.account, p.qty, p.entry_price) for p in command.repairs] == [("a", D("0.02"), D("3050")), ("b", 0, 0)]
    assert repair_command(request_id, [lines[2]]) is None  # nothing to repair: nothing to ask
    answer = c.PaperPositionsRepaired(
        request_id=request_id,
        changed=command.repairs[:1],
        skipped=[c.PaperPositionSkipped(account="b", symbol="ETHUSDT", reason=c.PaperRepairSkip.ALREADY_MATCHING)],
    )
    done = completed(lines, answer)
    assert [(d["account"], d["changed"], d.get("skipped")) for d in done] == [
        ("a", True, None),
        ("b", False, "already_matching"),
        ("c", False, None),
    ]


class _DownEngine:
    def connect(self):
        raise ConnectionRefusedError("database down")


async def test_a_paper_look_up_that_cannot_read_the_venue_is_unknown_never_not_found():
    outcome = await PaperLookup(_DownEngine()).find_order("a", "ETHUSDT", "ego-1")  # type: ignore[arg-type]
    assert isinstance(outcome, Unknown) and outcome.cause == "paper venue unreachable: ConnectionRefusedError"
