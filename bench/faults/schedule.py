"""What one trial does, from its fault kind and seed alone: the load's signals and the one fault.

Pure: the same (kind, seed, shape) always gives the same plan, so `--kind X --seed N`
replays a trial. Where a kind covers several targets (which service, which named
point, which topic, 429 or 418) the seed picks them in turn, so any run of
`len(targets)` consecutive seeds covers every target; the seed's random stream
picks the moments, durations and hit counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from egis_common.failpoints import POINTS

SERVICES = ("signal_router", "executor", "ledger", "reconciler")
FAILPOINTS = tuple(sorted(POINTS))
SERVICE_OF_POINT = {"executor": "executor", "ledger": "ledger", "signal_router": "signal_router"}
REDELIVERED_TOPICS = (
    "egis.signals.received.v1",
    "egis.router.intents.v1",
    "egis.ledger.commands.v1",
    "egis.ledger.events.v1",
    "egis.executor.executions.v1",
)

KINDS = (
    "kill_random",  # kill -9 of a service at a random moment, restarted after a pause
    "kill_at_point",  # kill -9 at a named failpoint (before/after the exchange call, each commit)
    "rebalance",  # two instances of a service, one killed mid-burst
    "kafka_kill",  # kill -9 of the broker, restarted on the same ports and data
    "postgres_stop",  # immediate stop, started again at once
    "postgres_down_5s",  # immediate stop, 5 s down
    "postgres_down_60s",  # immediate stop, 60 s down
    "postgres_refuse",  # new connections refused, open ones cut, for a few seconds
    "redelivery",  # records of one topic published again: duplicated and out of order
    "binance_timeout",  # the venue accepts an order and never answers in time
    "binance_5xx",  # 500 or 503 before the order is processed
    "binance_throttle",  # 429 or 418 with Retry-After
    "binance_stream_drop",  # the user-data stream's sockets dropped, new ones refused a while
)


@dataclass(frozen=True)
class Shape:
    """The load: lanes of open/close pairs for each (bot, symbol), and one burst of opens from other bots."""

    seconds: float = 12.0
    paper_bots: int = 3
    paper_symbols: tuple[str, ...] = ("ETHUSDT", "SOLUSDT", "BNBUSDT")
    binance_bots: int = 2
    binance_symbols: tuple[str, ...] = ("ETHUSDT", "SOLUSDT")
    burst_bots: int = 20  # paper bots that open at once (and close a little later): the burst
    hold_seconds: tuple[float, float] = (1.5, 3.0)  # open -> close
    gap_seconds: tuple[float, float] = (0.5, 2.0)  # close -> next open


@dataclass(frozen=True)
class Signal:
    at_s: float  # from the load's start
    bot: str  # "paper-0", "binance-1", "burst-7"
    symbol: str
    action: str  # "buy" (open long) or "exit" (close)
    client_id: str  # the webhook's signal_id: unique within the trial


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float  # when it is injected, from the load's start (a failpoint is armed from the start instead)
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.kind}({shown}) at {self.at_s:.1f}s"


@dataclass(frozen=True)
class Plan:
    kind: str
    seed: int
    shape: Shape
    signals: tuple[Signal, ...]
    fault: Fault
    burst_at_s: float


def bots(shape: Shape) -> list[tuple[str, str]]:
    """(bot label, venue) of every bot the load uses."""
    return (
        [(f"paper-{i}", "paper") for i in range(shape.paper_bots)]
        + [(f"binance-{i}", "binance") for i in range(shape.binance_bots)]
        + [(f"burst-{i}", "paper") for i in range(shape.burst_bots)]
    )


def plan(kind: str, seed: int, shape: Shape = Shape()) -> Plan:
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    rng = random.Random(f"egis-faults:{kind}:{seed}")
    burst_at = round(rng.uniform(0.35, 0.55) * shape.seconds, 2)
    signals = _lanes(rng, shape) + _burst(rng, shape, burst_at)
    signals.sort(key=lambda s: s.at_s)
    return Plan(kind, seed, shape, tuple(signals), _fault(kind, seed, rng, shape, burst_at), burst_at)


def _lanes(rng: random.Random, shape: Shape) -> list[Signal]:
    lanes = [(f"paper-{i}", symbol) for i in range(shape.paper_bots) for symbol in shape.paper_symbols] + [
        (f"binance-{i}", symbol) for i in range(shape.binance_bots) for symbol in shape.binance_symbols
    ]
    signals = []
    for bot, symbol in lanes:
        at = rng.uniform(0, 2)
        while True:
            close_at = at + rng.uniform(*shape.hold_seconds)
            if close_at > shape.seconds:
                break  # every lane ends with a close: what the load opens, it closes
            signals += [
                Signal(round(at, 3), bot, symbol, "buy", f"{bot}-{symbol}-{len(signals)}"),
                Signal(round(close_at, 3), bot, symbol, "exit", f"{bot}-{symbol}-{len(signals) + 1}"),
            ]
            at = close_at + rng.uniform(*shape.gap_seconds)
    return signals


def _burst(rng: random.Random, shape: Shape, burst_at: float) -> list[Signal]:
    signals = []
    for i in range(shape.burst_bots):
        opened = burst_at + rng.uniform(0, 0.3)
        closed = min(opened + rng.uniform(*shape.hold_seconds), shape.seconds)
        signals += [
            Signal(round(opened, 3), f"burst-{i}", "ETHUSDT", "buy", f"burst-{i}-open"),
            Signal(round(closed, 3), f"burst-{i}", "ETHUSDT", "exit", f"burst-{i}-close"),
        ]
    return signals


def _fault(kind: str, seed: int, rng: random.Random, shape: Shape, burst_at: float) -> Fault:
    moment = round(rng.uniform(0.25, 0.6) * shape.seconds, 2)
    if kind == "kill_random":
        return Fault(
            kind, moment, {"service": SERVICES[seed % len(SERVICES)], "down_s": round(rng.uniform(0.5, 3.0), 1)}
        )
    if kind == "kill_at_point":
        point = FAILPOINTS[seed % len(FAILPOINTS)]
        return Fault(
            kind,
            0.0,
            {
                "point": point,
                "service": SERVICE_OF_POINT[point.split(".")[0]],
                "hit": rng.randint(2, 6),
                "down_s": round(rng.uniform(0.5, 2.0), 1),
            },
        )
    if kind == "rebalance":
        return Fault(
            kind,
            round(burst_at + rng.uniform(0.1, 0.4), 2),
            {"service": SERVICES[seed % len(SERVICES)], "victim": rng.choice(("first", "second"))},
        )
    if kind == "kafka_kill":
        return Fault(kind, moment, {"down_s": round(rng.uniform(0.5, 3.0), 1)})
    if kind in ("postgres_stop", "postgres_down_5s", "postgres_down_60s"):
        return Fault(
            kind, moment, {"down_s": {"postgres_stop": 0, "postgres_down_5s": 5, "postgres_down_60s": 60}[kind]}
        )
    if kind == "postgres_refuse":
        return Fault(kind, moment, {"refuse_s": round(rng.uniform(4.0, 8.0), 1)})
    if kind == "redelivery":
        return Fault(
            kind,
            moment,
            {
                "topic": REDELIVERED_TOPICS[seed % len(REDELIVERED_TOPICS)],
                "copies": rng.choice((1, 2)),
                "shuffle_seed": rng.randrange(2**32),
            },
        )
    if kind == "binance_timeout":
        return Fault(kind, moment, {"fault": "accept_then_timeout", "count": rng.randint(1, 3)})
    if kind == "binance_5xx":
        return Fault(kind, moment, {"fault": ("http_500", "http_503")[seed % 2], "count": rng.randint(1, 3)})
    if kind == "binance_throttle":
        return Fault(
            kind,
            moment,
            {
                "fault": ("http_429", "http_418")[seed % 2],
                "count": rng.randint(1, 3),
                "retry_after_s": rng.randint(1, 3),
            },
        )
    if kind == "binance_stream_drop":
        return Fault(kind, moment, {"refuse_s": round(rng.uniform(0.0, 5.0), 1)})
    raise AssertionError(kind)
