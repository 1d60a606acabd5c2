"""Request weight per minute, as the venue counts it per IP and reports in `X-MBX-USED-WEIGHT-1M`.

Windows are whole clock minutes, like the venue's: the count resets when the
minute turns, and Retry-After says how long until it does. A client that keeps
sending after 429s gets banned, as on the venue ("repeatedly violating rate
limits and/or failing to back off after receiving 429s will result in an
automated IP ban (HTTP status 418)", from 2 minutes up): `banned_until_ms`
says until when, for the request path to answer 418 meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
DEFAULT_WEIGHT_LIMIT = 2400
# The venue does not publish how many refusals it tolerates; its shortest ban is 2 minutes.
DEFAULT_REFUSALS_BEFORE_BAN = 10
DEFAULT_BAN_S = 120
_MINUTE_MS = 60_000


@dataclass
class WeightMeter:
    clock: Callable[[], int]
    limit: int = DEFAULT_WEIGHT_LIMIT
    refusals_before_ban: int = DEFAULT_REFUSALS_BEFORE_BAN
    ban_s: int = DEFAULT_BAN_S
    _minute: int = field(default=-1, init=False)
    _used: int = field(default=0, init=False)
    _refused: int = field(default=0, init=False)  # 429s answered in this minute
    _banned_until_ms: int = field(default=0, init=False)

    def used(self) -> int:
        self._roll()
        return self._used

    def try_spend(self, weight: int) -> bool:
        """Count the weight unless it would exceed the limit; then count nothing, say no, and note the refusal."""
        self._roll()
        if self._used + weight > self.limit:
            self._refused += 1
            if self._refused > self.refusals_before_ban:
                self._banned_until_ms = self.clock() + self.ban_s * 1000
            return False
        self._used += weight
        return True

    def banned_until_ms(self) -> int | None:
        """While banned, until when (epoch milliseconds); None when not banned."""
        return self._banned_until_ms if self.clock() < self._banned_until_ms else None

    def retry_after_s(self) -> int:
        now = self.clock()
        left_ms = (now // _MINUTE_MS + 1) * _MINUTE_MS - now
        return max(1, -(-left_ms // 1000))

    def _roll(self) -> None:
        minute = self.clock() // _MINUTE_MS
        if minute != self._minute:
            self._minute, self._used, self._refused = minute, 0, 0
