"""Driving `egis-local` and the system it runs from a test, as an operator would from a shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from egis_localinfra.testing import eventually


def run_cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")}
    env["EGIS_LOCAL_STATE_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, "-m", "egis_localinfra.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def alive(pid: int) -> bool:
    """Any of its threads still runs: a killed JVM's main thread is a zombie while the others (and its sockets) go."""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    return any(_thread_state(thread) not in (None, "Z") for thread in threads)


def _thread_state(thread: Path) -> str | None:
    try:
        return thread.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def services(state_dir: Path) -> dict[str, dict]:
    return json.loads((state_dir / "services.json").read_text())


def status_lines(output: str) -> dict[str, str]:
    """`status` output as {component: "healthy ..." | "unhealthy ..." | "stopped"}."""
    return {name: rest.strip() for name, rest in (line.split(":", 1) for line in output.splitlines())}


async def kill_9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)

    async def gone() -> bool:
        return not alive(pid)

    await eventually(gone, timeout=10, what=f"pid {pid} gone")


def system_env(state_dir: Path) -> dict[str, str]:
    """The settings `source .egis/local/env` gives a shell."""
    lines = (state_dir / "env").read_text().splitlines()
    pairs = (line.removeprefix("export ").split("=", 1) for line in lines)
    return {key: value.strip("'") for key, value in pairs}


def ledger_admin(state_dir: Path, *args: str, token: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")}
    env.update(system_env(state_dir), **({"EGIS_LEDGER_TOKEN": token} if token else {}))
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def new_bot(state_dir: Path, signal_key: str) -> tuple[str, str, str]:
    """(admin token, bot id, webhook secret) of a new paper bot, as the README's walkthrough makes one."""
    issued = ledger_admin(state_dir, "create-token", "--role", "admin", "--name", "ops")
    token = next(line.split()[1] for line in issued.splitlines() if line.startswith("token: "))
    created = json.loads(
        ledger_admin(
            state_dir,
            "bots",
            "create",
            "--name",
            signal_key,
            "--signal-key",
            signal_key,
            "--exchange",
            "paper",
            "--exchange-account",
            f"paper-{signal_key}",
            "--initial-budget-usd",
            "100",
            "--default-order-size-usd",
            "10",
            "--json",
            token=token,
        )
    )
    return token, created["bot_id"], created["webhook_secret"]


def post_signal(state_dir: Path, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{system_env(state_dir)['EGIS_GATEWAY_URL']}/v1/signals",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def positions(state_dir: Path, token: str, bot_id: str) -> list[dict]:
    return json.loads(ledger_admin(state_dir, "bots", "positions", bot_id, "--json", token=token))
