"""`egis` with nothing running and nothing set: one line and the documented exit code, never a traceback."""

from __future__ import annotations

import json
import socket
import sys
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import clean_env, egis, one_line_error  # noqa: E402

EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3
BOT = str(uuid.uuid4())
LEDGER_COMMANDS = [
    ["bots", "list"],
    ["bots", "show", BOT],
    ["bots", "pause", BOT],
    ["bots", "edit", BOT, "--name", "n"],
    ["bots", "delete", BOT, "--yes"],
    ["bots", "create", "--name", "n", "--signal-key", "k", "--exchange-account", "a"]
    + ["--initial-budget-usd", "100", "--default-order-size-usd", "10"],
    ["tokens", "list"],
    ["tokens", "create", "--name", "n", "--role", "user"],
    ["tokens", "revoke", BOT, "--yes"],
]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_version():
    done = await egis("--version", env=clean_env(Path("/nonexistent")))
    assert (done.code, done.out.strip()) == (0, f"egis {version('egis-cli')}")


@pytest.mark.parametrize("command", LEDGER_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
async def test_no_environment_and_no_local_system(tmp_path, command, as_json):
    done = await egis(*command, *(["--json"] if as_json else []), env=clean_env(tmp_path))
    line = one_line_error(done, EXIT_UNAVAILABLE)
    assert "EGIS_LEDGER_URL is not set" in line and str(tmp_path / "env") in line and done.out == ""


@pytest.mark.parametrize("command", LEDGER_COMMANDS, ids=" ".join)
async def test_a_ledger_that_does_not_answer(tmp_path, command):
    url = f"http://127.0.0.1:{closed_port()}"
    done = await egis(*command, env=clean_env(tmp_path, EGIS_LEDGER_URL=url, EGIS_LEDGER_TOKEN="egt_x"))
    line = one_line_error(done, EXIT_UNAVAILABLE)
    assert f"the ledger at {url} does not answer" in line


async def test_the_local_env_file_names_the_system_when_the_environment_does_not(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    (tmp_path / "env").write_text(f"export EGIS_LEDGER_URL='{url}'\nexport EGIS_LEDGER_TOKEN='egt_local'\n")
    done = await egis("bots", "list", env=clean_env(tmp_path))
    assert f"the ledger at {url} does not answer" in one_line_error(done, EXIT_UNAVAILABLE)


async def test_a_ledger_named_by_the_environment_never_gets_the_local_token(tmp_path):
    (tmp_path / "env").write_text("export EGIS_LEDGER_URL='http://127.0.0.1:1'\nexport EGIS_LEDGER_TOKEN='egt_local'\n")
    elsewhere = f"http://127.0.0.1:{closed_port()}"
    done = await egis("tokens", "list", env=clean_env(tmp_path, EGIS_LEDGER_URL=elsewhere))
    assert "EGIS_LEDGER_TOKEN is not set in the environment" in one_line_error(done, EXIT_UNAVAILABLE)


async def test_a_repair_without_its_settings(tmp_path):
    done = await egis("repair", "drift-report", env=clean_env(tmp_path))
    assert "EGIS_KAFKA_BOOTSTRAP_SERVERS is not set" in one_line_error(done, EXIT_UNAVAILABLE)
    signed_by_nobody = clean_env(tmp_path, EGIS_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{closed_port()}")
    done = await egis("repair", "drift-report", "--json", env=signed_by_nobody)
    assert "EGIS_OPERATOR_ID is not set in the environment" in one_line_error(done, EXIT_UNAVAILABLE)


@pytest.mark.parametrize(
    "command",
    [["bots", "show", "not-a-uuid"], ["tokens", "create", "--name", "n", "--role", "root"], ["bots", "frobnicate"]],
    ids=" ".join,
)
async def test_wrong_usage_exits_2_without_a_traceback(tmp_path, command):
    done = await egis(*command, env=clean_env(tmp_path))
    assert done.code == EXIT_USAGE and "Traceback" not in done.err and "Error" in done.err, done


async def test_a_repair_whose_kafka_does_not_answer_takes_its_settings_from_the_local_env_file(tmp_path):
    bootstrap = f"127.0.0.1:{closed_port()}"
    settings = {
        "EGIS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EGIS_KAFKA_USERNAME": "operator",
        "EGIS_KAFKA_PASSWORD": "secret",
        "EGIS_OPERATOR_ID": "local-admin",
        "EGIS_OPERATOR_KEY": "key",
    }
    (tmp_path / "env").write_text("".join(f"export {name}='{value}'\n" for name, value in settings.items()))
    done = await egis("repair", "drift-report", env=clean_env(tmp_path))
    assert f"cannot reach Kafka at {bootstrap} as the operator" in one_line_error(done, EXIT_UNAVAILABLE)


async def test_status_with_nothing_running_is_json_saying_stopped_and_exit_1(tmp_path):
    for as_json in (True, False):
        done = await egis("status", *(["--json"] if as_json else []), env=clean_env(tmp_path))
        assert (done.code, done.err) == (EXIT_FAILED, ""), done
    answer = json.loads((await egis("status", "--json", env=clean_env(tmp_path))).out)
    assert answer["healthy"] is False
    assert {name: c["state"] for name, c in answer["components"].items() if name != "prometheus"} == dict.fromkeys(
        ["kafka", "postgres", "ledger", "signal_router", "executor", "reconciler"], "stopped"
    )
    assert answer["components"]["prometheus"]["state"] in ("stopped", "absent")  # absent: not installed
    assert not any(c["healthy"] for c in answer["components"].values())


@pytest.mark.parametrize(
    "command", [["env"], ["mark-price", "ETHUSDT", "2942.67"], ["team", "create", "analytics"]], ids=" ".join
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
async def test_a_local_command_with_no_local_system_is_one_line_and_exit_3(tmp_path, command, as_json):
    done = await egis(*command, *(["--json"] if as_json else []), env=clean_env(tmp_path))
    assert "./egis up first" in one_line_error(done, EXIT_UNAVAILABLE) and done.out == ""


async def test_down_with_nothing_running_says_so_and_stops_nothing(tmp_path):
    done = await egis("down", env=clean_env(tmp_path))
    assert (done.code, done.out.splitlines(), done.err) == (0, ["nothing was running"], ""), done
    answer = json.loads((await egis("down", "--json", env=clean_env(tmp_path))).out)
    assert answer["stopped"] == []


async def test_listing_operators_before_the_first_up_makes_none(tmp_path):
    """Only `up` makes the first operator, whose key it shows once: a listing before it must not make it unseen."""
    done = await egis("operators", "list", env=clean_env(tmp_path))
    assert (done.code, done.err) == (0, ""), done
    assert done.out.strip() == "no operators yet: the first `./egis up` makes the first one"
    assert json.loads((await egis("operators", "list", "--json", env=clean_env(tmp_path))).out)["operators"] == []
    assert list(tmp_path.iterdir()) == []
