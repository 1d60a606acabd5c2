"""Admin replies in parts: a report too large for one Kafka message goes as several, and is joined again.

Every part carries the report's summary (its values that are not lists) and a
slice of each list of lines (positions, pending orders, drift), in order, so
that no encoded part is larger than the limit; one line larger than the limit
goes alone. Joined in part order, the lists are the whole report again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from egis_common import contracts as c
from egis_common.topics import encode
from pydantic_core import to_json

_COUNT_ROOM = 2 * 8  # the envelope's part numbers, written as 1 while measuring, may take this many digits more


def paged(command: c.AdminCommand, status: str, report: dict[str, Any], max_bytes: int) -> list[c.AdminReply]:
    """The reply to `command` as one message when it fits in `max_bytes` encoded, else in parts that do."""
    return paged_reply(command.request_id, command.command, dry_run=not command.confirm, status=status,
                       report=report, max_bytes=max_bytes)


def paged_reply(request_id: UUID, name: c.AdminCommandName, *, dry_run: bool, status: str, report: dict[str, Any],
                max_bytes: int) -> list[c.AdminReply]:
    """`paged` for a request known by its id (a run completed after the command was handled)."""
    def reply(part_report: dict[str, Any], part: int = 1, parts: int = 1) -> c.AdminReply:
        return c.AdminReply(request_id=request_id, command=name, status=status,
                            dry_run=dry_run, report=part_report, part=part, parts=parts)

    whole = reply(report)
    lists = [name for name, value in report.items() if isinstance(value, list)]
    if not lists or len(encode(whole)) <= max_bytes:
        return [whole]
    room = max_bytes - len(encode(reply({**report, **{name: [] for name in lists}}))) - _COUNT_ROOM
    pages = _split([(name, line) for name in lists for line in report[name]], room)
    return [reply(_page_report(report, lists, page), n, len(pages)) for n, page in enumerate(pages, start=1)]


def assembled(parts: Sequence[c.AdminReply]) -> c.AdminReply:
    """The whole reply from all its parts (in any order, each once)."""
    ordered = sorted(parts, key=lambda part: part.part)
    assert [p.part for p in ordered] == list(range(1, ordered[0].parts + 1)), "every part, once"
    first = ordered[0]
    report = {name: [line for part in ordered for line in part.report[name]] if isinstance(value, list) else value
              for name, value in first.report.items()}
    return first.model_copy(update={"report": report})


def _split(lines: list[tuple[str, Any]], room: int) -> list[list[tuple[str, Any]]]:
    pages: list[list[tuple[str, Any]]] = [[]]
    used = 0
    for name, line in lines:
        size = len(to_json(line)) + 1  # and its comma
        if pages[-1] and used + size > room:
            pages.append([])
            used = 0
        pages[-1].append((name, line))
        used += size
    return pages


def _page_report(report: dict[str, Any], lists: list[str], page: list[tuple[str, Any]]) -> dict[str, Any]:
    return {name: [line for of, line in page if of == name] if name in lists else value
            for name, value in report.items()}
