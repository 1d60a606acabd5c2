"""A repair asked for stands only while the row still differs and the fills still say what was seen. Pure."""

from __future__ import annotations

from decimal import Decimal

from egis_common.contracts import PaperRepairSkip
from egis_venues.paper.position_repair import Holding, repairs, why_not

D = Decimal


def test_a_repair_stands_while_the_row_differs_and_the_fills_say_what_was_seen():
    derived = {("a", "ETHUSDT"): Holding(D("0.02"), D("3050"), 2, 7), ("b", "ETHUSDT"): Holding(D("1"), D("10"))}
    recorded = {("a", "ETHUSDT"): Holding(D("0.015"), D("3000")), ("b", "ETHUSDT"): Holding(D("1"), D("10"))}
    astray, in_sync = repairs(derived, recorded)
    assert why_not(astray, D("0.020"), D("3050.0")) is None
    assert why_not(astray, D("0.01"), D("3050")) is PaperRepairSkip.FILLS_MOVED
    assert why_not(in_sync, D("1"), D("10")) is PaperRepairSkip.ALREADY_MATCHING
    assert why_not(None, D("0"), D("0")) is PaperRepairSkip.ALREADY_MATCHING  # neither side knows the pair now
