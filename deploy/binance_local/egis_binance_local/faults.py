"""Injected faults: how the next N matching requests misbehave, and the request log.

Two families:
- before processing (nothing happens on the venue): `http_500`, `http_503`,
  `reject` (a given code and message), `http_429` and `http_418` (with
  Retry-After);
- after processing (the request took effect, the client never learns it):
  `accept_then_timeout` (the answer is held longer than any client waits)
  and `accept_then_drop` (the connection is closed instead of answered).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class FaultKind(enum.Enum):
    HTTP_500 = "http_500"
    HTTP_503 = "http_503"
    REJECT = "reject"
    HTTP_429 = "http_429"
    HTTP_418 = "http_418"
    ACCEPT_THEN_TIMEOUT = "accept_then_timeout"
    ACCEPT_THEN_DROP = "accept_then_drop"

    @property
    def after_processing(self) -> bool:
        return self in (FaultKind.ACCEPT_THEN_TIMEOUT, FaultKind.ACCEPT_THEN_DROP)


@dataclass
class Fault:
    kind: FaultKind
    remaining: int = 1
    method: str | None = None  # None matches any
    path: str | None = None  # exact path such as "/fapi/v1/order"; None matches any
    code: int | None = None  # `reject`, and the JSON code of the HTTP faults
    msg: str | None = None
    status: int | None = None  # `reject`: HTTP status, 400 unless given
    retry_after_s: int = 1  # 429 / 418
    delay_s: float = 30.0  # accept_then_timeout: longer than python-binance's 10 s default

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in (None, method) and self.path in (None, path)


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault for this request, used up by one."""
        for fault in self.faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                return fault
        return None

    def clear(self) -> None:
        self.faults.clear()


@dataclass
class RequestRecord:
    """One /fapi request as the venue saw it; `params` leaves out the signature."""

    method: str
    path: str
    params: dict[str, str]
    weight: int
    api_key: str | None
    time_ms: int
    status: int | None = None
    fault: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "params": self.params,
            "weight": self.weight,
            "apiKey": self.api_key,
            "time": self.time_ms,
            "status": self.status,
            "fault": self.fault,
        }
