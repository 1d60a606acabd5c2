"""The request-weight budget on its own: a fake clock that the budget's waits move forward."""

from __future__ import annotations

import pytest

from egis_venues.binance.weights import (
    UNLIMITED,
    IpBanned,
    WeightBudget,
    request_weight,
)


class FakeTime:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds


def budget(per_minute: int, now_s: float = 600.0) -> tuple[WeightBudget, FakeTime]:
    time = FakeTime(now_s)
    return WeightBudget(per_minute, clock=time.clock, sleep=time.sleep), time


def test_each_request_weighs_what_the_venue_publishes():
    assert request_weight("get", "order", {"symbol": "ETHUSDT"}) == 1
    assert request_weight("get", "algoOrder", {"symbol": "ETHUSDT"}) == 1
    assert request_weight("get", "userTrades", {"symbol": "ETHUSDT"}) == 5
    assert request_weight("get", "openOrders", {"symbol": "ETHUSDT"}) == 1
    assert request_weight("get", "openOrders", {}) == 40
    assert request_weight("post", "order", {}) == 0


async def test_a_spent_budget_waits_for_the_next_minute_then_counts_afresh():
    weights, time = budget(12, now_s=630.0)  # half way through a minute
    for _ in range(2):
        await weights.spend(5)
    assert time.slept == []
    await weights.spend(5)  # 15 > 12: wait for the minute to turn
    assert time.slept == [30.0] and weights.weight_sent == 15 and weights.waited_s == 30.0


async def test_the_venues_higher_count_is_followed():
    weights, time = budget(10)
    await weights.spend(1)
    weights.observe("9")  # another client on our IP spent 8 more
    await weights.spend(2)
    assert time.slept == [60.0]


async def test_unlimited_never_waits_for_the_budget_but_does_for_a_retry_after():
    weights, time = budget(UNLIMITED)
    for _ in range(100):
        await weights.spend(40)
    assert time.slept == []
    weights.refused(429, 3)
    await weights.spend(1)
    assert time.slept == [3.0] and weights.report()["http_429"] == 1


async def test_after_a_418_nothing_is_sent_until_the_ban_ends():
    weights, time = budget(UNLIMITED)
    weights.refused(418, 120)
    with pytest.raises(IpBanned):
        await weights.spend(1)
    time.now_s += 120
    await weights.spend(1)
    assert weights.requests == 1
