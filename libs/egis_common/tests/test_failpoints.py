import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from egis_common import failpoints
from egis_common.failpoints import POINTS, FailpointSpecError, parse

REPO = Path(__file__).resolve().parents[3]
CALL = re.compile(r"""failpoint\(\s*["']([^"']+)["']\s*\)""")


def test_nothing_is_armed_by_an_empty_or_missing_spec():
    assert parse("") == {} and parse(" , ") == {}


def test_kill_arms_the_first_hit_and_kill_at_n_the_nth():
    armed = parse("executor.after_exchange_call=kill, ledger.before_execution_commit=kill@3")
    assert {name: point.on_hit for name, point in armed.items()} == {
        "executor.after_exchange_call": 1,
        "ledger.before_execution_commit": 3,
    }


@pytest.mark.parametrize(
    "spec",
    [
        "executor.after_exchange_cal=kill",  # a typo must not arm nothing silently
        "executor.after_exchange_call=raise",
        "executor.after_exchange_call=kill@0",
        "executor.after_exchange_call=kill@x",
        "executor.after_exchange_call",
    ],
)
def test_an_unknown_point_or_action_is_refused(spec):
    with pytest.raises(FailpointSpecError):
        parse(spec)


def test_an_unarmed_point_returns_and_an_armed_one_not_yet_due_counts_its_hits():
    try:
        failpoints.arm("signal_router.after_commit=kill@5")
        for _ in range(4):
            failpoints.failpoint("signal_router.after_commit")
            failpoints.failpoint("signal_router.before_commit")
        assert failpoints._armed["signal_router.after_commit"].hits == 4
    finally:
        failpoints.arm("")


def test_the_armed_point_kills_the_process_at_its_nth_hit_from_the_environment():
    program = (
        "from egis_common.failpoints import failpoint\n"
        "for hit in range(1, 4):\n"
        "    print(hit, flush=True)\n"
        "    failpoint('ledger.after_execution_commit')\n"
        "print('survived', flush=True)\n"
    )
    env = {"EGIS_FAILPOINTS": "ledger.after_execution_commit=kill@2", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["1", "2"]  # the second hit killed it before the third print
    assert "failpoint ledger.after_execution_commit: SIGKILL at hit 2" in done.stderr


def test_every_failpoint_in_the_services_is_registered_and_every_registered_one_is_placed():
    placed = [name for path in (REPO / "services").glob("*/*/**/*.py") for name in CALL.findall(path.read_text())]
    assert set(placed) <= POINTS, set(placed) - POINTS
    assert sorted(placed) == sorted(POINTS)  # each exactly once: a name means one moment
