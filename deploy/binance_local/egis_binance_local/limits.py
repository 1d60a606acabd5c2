"""Request weight per minute, as the venue counts it per IP and reports in `X-MBX-USED-WEIGHT-1M`.

Windows are whole clock minutes, like the venue's: the count resets when the
minute turns, and Retry-After says how long until it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
DEFAULT_WEIGHT_LIMIT = 2400
_MINUTE_MS = 60_000


@dataclass
class WeightMeter:
    clock: Callable[[], int]
    limit: int = DEFAULT_WEIGHT_LIMIT
    _minute: int = field(default=-1, init=False)
    _used: int = field(default=0, init=False)

    def used(self) -> int:
        self._roll()
        return self._used

    def try_spend(self, weight: int) -> bool:
        """Count the weight unless it would exceed the limit; then count nothing and say no."""
        self._roll()
        if self._used + weight > self.limit:
            return False
        self._used += weight
        return True

    def retry_after_s(self) -> int:
        now = self.clock()
        left_ms = (now // _MINUTE_MS + 1) * _MINUTE_MS - now
        return max(1, -(-left_ms // 1000))

    def _roll(self) -> None:
        minute = self.clock() // _MINUTE_MS
        if minute != self._minute:
            self._minute, self._used = minute, 0
