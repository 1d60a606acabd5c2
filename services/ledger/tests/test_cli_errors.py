"""`egis-ledger-admin` run as a person runs it, with something wrong: a bad argument, a setting missing, a database
or a ledger that does not answer. Each is one line on stderr and the exit code its help documents, never a
traceback, and nothing on stdout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ADMIN = str(Path(sys.executable).parent / "egis-ledger-admin")
EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3
TOKEN_ID = str(uuid.uuid4())
DATABASE_COMMANDS = [
    ["tokens", "list"],
    ["tokens", "list", "--json"],
    ["create-token", "--role", "admin", "--name", "ops"],
    ["revoke-token", TOKEN_ID],
    ["audit", "list", "--limit", "5"],
]
LEDGER_COMMANDS = [["bots", "list"], ["bots", "budget", TOKEN_ID, "--json"], ["bots", "delete", TOKEN_ID, "--yes"]]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """The installed command with no EGIS_* setting but `settings`, no terminal, nothing on stdin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")} | settings
    return subprocess.run(
        [ADMIN, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done
    assert "Traceback" not in done.stdout + done.stderr and done.stdout == "", done
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("egis-ledger-admin"), done
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "the following arguments are required: command"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["bots", "frobnicate"], "invalid choice: 'frobnicate'"),
        (["bots", "delete", "not-a-uuid"], "invalid UUID value: 'not-a-uuid'"),
        (["audit", "list", "--limit", "0"], "--limit: a whole number from 1 to 500"),
        (["create-token", "--role", "root", "--name", "x"], "invalid choice: 'root'"),
        (["create-token", "--role", "user", "--name", "x", "--expires-in", "yesterday"], "--expires-in"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_bad_argument_is_one_line_that_points_to_the_help(args, says):
    line = one_line_error(admin(*args), EXIT_USAGE)
    assert says in line and line.endswith("--help)")


def _a_database_answers_on_the_default_port() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 5432)) == 0


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_no_database_setting_names_the_default_it_tried(args):
    if _a_database_answers_on_the_default_port():
        pytest.skip("a database answers at the default address")
    line = one_line_error(admin(*args), EXIT_UNAVAILABLE)
    assert "the database at 127.0.0.1:5432/egis (EGIS_DATABASE_URL is not set: its default) does not answer" in line


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_a_database_that_does_not_answer(args):
    port = closed_port()
    url = f"postgresql+asyncpg://egis:not-this-password@127.0.0.1:{port}/egis"
    line = one_line_error(admin(*args, EGIS_DATABASE_URL=url), EXIT_UNAVAILABLE)
    assert f"the database at 127.0.0.1:{port}/egis does not answer: ConnectionRefusedError" in line
    assert "not-this-password" not in line


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"EGIS_DATABASE_URL": "not a url"}, "EGIS_DATABASE_URL is not a database URL"),
        ({"EGIS_DB_POOL_SIZE": "many"}, "EGIS_DB_POOL_SIZE: Input should be a valid integer"),
    ],
    ids=["database url", "pool size"],
)
def test_a_setting_that_is_not_one(settings, says):
    assert says in one_line_error(admin("tokens", "list", **settings), EXIT_UNAVAILABLE)


@pytest.mark.parametrize("args", LEDGER_COMMANDS, ids=" ".join)
def test_bots_without_a_token(args):
    line = one_line_error(admin(*args), EXIT_UNAVAILABLE)
    assert "EGIS_LEDGER_TOKEN is not set" in line


@pytest.mark.parametrize("args", LEDGER_COMMANDS, ids=" ".join)
def test_a_ledger_that_does_not_answer(args):
    url = f"http://127.0.0.1:{closed_port()}"
    line = one_line_error(admin(*args, EGIS_LEDGER_URL=url, EGIS_LEDGER_TOKEN="egt_x"), EXIT_UNAVAILABLE)
    assert f"the ledger at {url} does not answer (ConnectError)" in line


def test_a_delete_with_no_terminal_to_ask_on_is_refused_before_the_ledger_is_asked():
    url = f"http://127.0.0.1:{closed_port()}"  # were it asked, this would be a "does not answer"
    line = one_line_error(admin("bots", "delete", TOKEN_ID, EGIS_LEDGER_URL=url, EGIS_LEDGER_TOKEN="egt_x"), 1)
    assert "not confirmed (no terminal to ask on): pass --yes" in line


def test_version_and_the_documented_exit_codes():
    version = admin("--version")
    assert version.returncode == 0 and version.stdout.startswith("egis-ledger-admin ")
    helped = admin("--help")
    assert helped.returncode == 0 and "Exit codes: 0 done; 1 refused or failed" in helped.stdout
    assert "2 wrong usage; 3 a setting is missing" in helped.stdout
