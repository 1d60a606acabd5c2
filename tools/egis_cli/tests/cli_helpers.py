"""Running `egis` as a person does: its own process, its own environment, a terminal to answer on when asked."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
from dataclasses import dataclass
from pathlib import Path

EGIS = str(Path(sys.executable).parent / "egis")


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


def clean_env(state_dir: Path, **settings: str) -> dict[str, str]:
    """No EGIS_* setting but these, and a local state directory of the test's own (empty unless it writes one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")}
    return env | {"EGIS_LOCAL_STATE_DIR": str(state_dir), "COLUMNS": "80"} | settings


async def egis(*args: str, env: dict[str, str], answer: str | None = None, timeout: float = 60) -> Done:
    """`egis ARGS`; `answer`: typed on a terminal (a pty) when it asks; without it, stdin is empty and no terminal.

    Asynchronous, so an HTTP server in the test's own event loop answers it meanwhile."""
    terminal = pty.openpty() if answer is not None else None
    try:
        process = await asyncio.create_subprocess_exec(
            EGIS,
            *args,
            env=env,
            stdin=terminal[1] if terminal else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        if terminal:
            os.write(terminal[0], answer.encode() + b"\n")
        out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    finally:
        if terminal:
            os.close(terminal[0])
            os.close(terminal[1])
    return Done(process.returncode, out.decode(), err.decode())


def one_line_error(done: Done, code: int) -> str:
    """The documented exit code and a single `egis: ...` line on stderr, never a traceback."""
    assert done.code == code, done
    assert "Traceback" not in done.out + done.err, done
    lines = done.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("egis: "), done
    return lines[0]


def table_rows(text: str) -> list[list[str]]:
    """The cells of each row of a Rich table (header first), without its borders."""
    rows = []
    for line in text.splitlines():
        if line.startswith(("┃", "│")):
            rows.append([cell.strip() for cell in line.strip("┃│").replace("┃", "│").split("│")])
    return rows
