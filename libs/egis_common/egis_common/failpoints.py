"""Named points where a fault-injection run may kill the process: inert unless the environment arms them.

    EGIS_FAILPOINTS="executor.after_exchange_call=kill"          SIGKILL at the first hit
    EGIS_FAILPOINTS="ledger.before_execution_commit=kill@3"      ... at the third hit
    EGIS_FAILPOINTS="a=kill,b=kill@2"                            several, each counted on its own

A kill is SIGKILL: no finally blocks, no atexit, no flush of anything the
process holds, exactly what a power cut or the OOM killer leaves behind. The
points are the moments where a crash is hardest to recover from (just before
and just after a commit, around an exchange call); `bench/faults` and the
crash-recovery tests use them to die at a named moment instead of a random one.

Unarmed, `failpoint()` is one test of an empty dict, so the calls stay in
production code. Every name is registered in POINTS: an armed name that is not
there is refused at start, so a typo cannot make a fault run silently test nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass

ENVIRONMENT_VARIABLE = "EGIS_FAILPOINTS"

POINTS = frozenset(
    {
        # executor (handlers.Submission): tx1 records the attempt, then the call, then tx2 records the outcome.
        "executor.before_attempt_commit",
        "executor.after_attempt_commit",
        "executor.before_exchange_call",
        "executor.after_exchange_call",
        "executor.before_outcome_commit",
        "executor.after_outcome_commit",
        # ledger: one transaction per consumed batch of commands (reservations) and of executions.
        "ledger.before_reservation_commit",
        "ledger.after_reservation_commit",
        "ledger.before_execution_commit",
        "ledger.after_execution_commit",
        # signal_router: one transaction per consumed batch of signals (dedup keys, intents, skips).
        "signal_router.before_commit",
        "signal_router.after_commit",
    }
)


class FailpointSpecError(ValueError):
    """EGIS_FAILPOINTS names an unknown point or an action other than kill[@N]."""


@dataclass
class Armed:
    on_hit: int  # the hit that kills, counting from 1
    hits: int = 0


def parse(spec: str) -> dict[str, Armed]:
    """`name=kill[@N],...` -> the armed points; an empty spec arms nothing."""
    armed: dict[str, Armed] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, action = (text.strip() for text in item.partition("="))
        if name not in POINTS:
            raise FailpointSpecError(f"{ENVIRONMENT_VARIABLE}: unknown failpoint {name!r}; known: {sorted(POINTS)}")
        verb, _, nth = action.partition("@")
        if verb != "kill" or (nth and not (nth.isdigit() and int(nth) >= 1)):
            raise FailpointSpecError(f"{ENVIRONMENT_VARIABLE}: {item!r}: the action is kill or kill@N (N >= 1)")
        armed[name] = Armed(int(nth or 1))
    return armed


_armed: dict[str, Armed] = parse(os.environ.get(ENVIRONMENT_VARIABLE, ""))


def failpoint(name: str) -> None:
    """Kill this process here if the environment armed `name` and this is the hit it named; else nothing."""
    if not _armed:
        return
    point = _armed.get(name)
    if point is None:
        return
    point.hits += 1
    if point.hits == point.on_hit:
        # stderr, not the structured log: the log's handlers may buffer, and this line must survive the kill.
        print(f"failpoint {name}: SIGKILL at hit {point.hits}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def arm(spec: str) -> None:
    """Replace what is armed in this process (tests; a service reads its environment at import)."""
    global _armed
    _armed = parse(spec)
