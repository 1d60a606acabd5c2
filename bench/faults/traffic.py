"""The load: every planned signal POSTed to a live gateway on its schedule, and every answer kept.

Open loop: each POST leaves at its planned moment whether or not earlier ones were
answered, so a stalled system shows up in the answers, not as a slower load. When
two gateways run (a rebalance of the signal_router) the POSTs alternate between the
live ones, as a load balancer would; a POST to a gateway that dies is recorded as
its error and not retried (TradingView does not retry either).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import aiohttp
from schedule import Signal

POST_TIMEOUT_S = 5.0  # TradingView gives up after 3 s; a little more, so a slow 202 is still seen as one


@dataclass(frozen=True)
class Bot:
    label: str
    venue: str  # "paper" | "binance"
    bot_id: str
    signal_key: str
    secret: str
    exchange_account: str


@dataclass
class Post:
    """One POST /v1/signals and what came back; `status` is the HTTP status, or the client error's name."""

    signal: Signal
    bot_id: str
    signal_key: str
    sent_at: float  # wall clock
    gateway: str
    status: int | str = "unsent"
    signal_id: str | None = None  # from a 202
    reason: str | None = None  # from a refusal
    seconds: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.status == 202

    def as_json(self) -> dict:
        return {**asdict(self), "signal": asdict(self.signal)}


class Traffic:
    def __init__(self, bots: dict[str, Bot], gateways: Callable[[], list[str]]) -> None:
        self.bots, self.gateways = bots, gateways
        self.posts: list[Post] = []
        self._turn = itertools.count()

    async def run(self, signals: tuple[Signal, ...], started_at: float) -> list[Post]:
        """POST each signal at `started_at + at_s` (wall clock); returns once every answer is in."""
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S)
        ) as session:
            tasks = []
            for signal in signals:
                if (pause := started_at + signal.at_s - time.time()) > 0:
                    await asyncio.sleep(pause)
                tasks.append(asyncio.create_task(self._post(session, signal)))
            await asyncio.gather(*tasks)
        return self.posts

    async def _post(self, session: aiohttp.ClientSession, signal: Signal) -> None:
        bot = self.bots[signal.bot]
        live = self.gateways()
        gateway = live[next(self._turn) % len(live)] if live else ""
        post = Post(signal, bot.bot_id, bot.signal_key, time.time(), gateway)
        self.posts.append(post)
        body = {
            "signal_key": bot.signal_key,
            "secret": bot.secret,
            "action": signal.action,
            "symbol": signal.symbol,
            "signal_id": signal.client_id,
        }
        if not gateway:
            post.status = "no_live_gateway"
            return
        try:
            async with session.post(f"{gateway}/v1/signals", json=body) as answer:
                post.status = answer.status
                payload = await answer.json(content_type=None)
                if answer.status == 202:
                    post.signal_id = payload["signal_id"]
                else:
                    post.reason = payload.get("reason") if isinstance(payload, dict) else str(payload)[:200]
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            post.status = type(error).__name__
        post.seconds = round(time.time() - post.sent_at, 4)
