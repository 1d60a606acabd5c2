"""The fault suite's plans (bench/faults/schedule.py): replayable from the seed, covering every target in turn."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "faults"))
import schedule  # noqa: E402
from schedule import FAILPOINTS, KINDS, SERVICES, plan  # noqa: E402

from egis_common.failpoints import POINTS  # noqa: E402


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_kind_and_seed_give_the_same_trial(kind):
    assert plan(kind, 7) == plan(kind, 7)
    assert plan(kind, 7).signals != plan(kind, 8).signals


def test_consecutive_seeds_cover_every_named_point_and_every_service():
    points = {plan("kill_at_point", seed).fault.params["point"] for seed in range(1, len(FAILPOINTS) + 1)}
    killed = {plan("kill_random", seed).fault.params["service"] for seed in range(1, len(SERVICES) + 1)}
    doubled = {plan("rebalance", seed).fault.params["service"] for seed in range(1, len(SERVICES) + 1)}
    assert points == POINTS and killed == doubled == set(SERVICES)


def test_a_named_point_is_armed_in_the_service_that_holds_it():
    for seed in range(len(FAILPOINTS)):
        params = plan("kill_at_point", seed).fault.params
        assert params["point"].startswith(params["service"] + ".")


@pytest.mark.parametrize("seed", range(1, 6))
def test_every_lane_alternates_open_and_close_and_ends_with_a_close(seed):
    lanes = defaultdict(list)
    for signal in plan("kill_random", seed).signals:
        lanes[(signal.bot, signal.symbol)].append(signal)
    for signals in lanes.values():
        assert [s.action for s in signals] == ["buy", "exit"] * (len(signals) // 2)
        assert all(s.at_s <= schedule.Shape().seconds for s in signals)
    ids = [s.client_id for s in plan("kill_random", seed).signals]
    assert len(ids) == len(set(ids))  # a repeated id would be deduplicated by the gateway, not tested


def test_the_burst_opens_every_burst_bot_within_a_third_of_a_second():
    p = plan("rebalance", 3)
    burst = [s for s in p.signals if s.bot.startswith("burst-") and s.action == "buy"]
    assert len(burst) == p.shape.burst_bots
    assert all(p.burst_at_s <= s.at_s <= p.burst_at_s + 0.3 for s in burst)
    assert p.fault.at_s > p.burst_at_s  # the rebalance's kill lands in the burst


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        plan("kill_everything", 1)
