"""`egis-local up` brings back a consistent system after a component died; `status` says which one did.

One system for the module: every test leaves it healthy again, as `up` should.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from egis_localinfra.testing import eventually

sys.path.insert(0, str(Path(__file__).parent))
from local_system import (  # noqa: E402
    kill_9,
    new_bot,
    positions,
    post_signal,
    run_cli,
    services,
    status_lines,
    system_env,
)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("heal") / "local"
    try:
        up = run_cli(state_dir, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield state_dir
    finally:
        down = run_cli(state_dir, "down", "--json")
        assert down.returncode == 0, down.stdout + down.stderr
        assert {"kafka", "postgres", "ledger"} <= set(json.loads(down.stdout)["stopped"])


def up_again(state_dir: Path) -> str:
    up = run_cli(state_dir, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    return up.stdout


def assert_healthy(state_dir: Path) -> None:
    status = run_cli(state_dir, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert all(line.startswith("healthy") for line in status_lines(status.stdout).values()), status.stdout


def egis_json(state_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """`egis ARGS --json`, as an operator's shell that sourced nothing runs it, with what it printed parsed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")} | {"EGIS_LOCAL_STATE_DIR": str(state_dir)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "egis"), *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "Traceback" not in done.stderr and done.stdout, (done.returncode, done.stderr)
    return done, json.loads(done.stdout)


def same_facts(json_line: str, text_line: str) -> bool:
    """The two forms' lines for one component, read a moment apart: Prometheus's count of targets up may have
    changed in between (it scrapes a service killed just before at its next interval), nothing else may."""

    def facts(line: str) -> str:
        return re.sub(r"targets \d+/\d+ up", "targets up", " ".join(line.split()))

    return facts(json_line) == facts(text_line)


def assert_json_status_agrees(state_dir: Path) -> dict:
    """`egis status --json` says what the text form says, with the same exit code; its components, by name."""
    text = run_cli(state_dir, "status")
    done, answer = egis_json(state_dir, "status")
    assert done.returncode == text.returncode, (done, text)
    lines = status_lines(text.stdout)
    components = answer["components"]
    assert list(components) == list(lines)
    for name, component in components.items():
        assert same_facts(f"{component['state']} {component['detail']}", lines[name]), (name, component, lines[name])
        assert component["healthy"] == (component["state"] == "healthy")
        assert f"pid {component['pid']}" in lines[name], name
        if component["healthy"]:  # a dead service's line names its log instead
            port = component["address"].rsplit(":", 1)[1]
            assert f":{port}" in lines[name], name
        assert ("problem" in component) == (not component["healthy"]), component
    assert answer["healthy"] == (text.returncode == 0)
    return components


def pids(state_dir: Path) -> dict[str, int]:
    return {service: info["pid"] for service, info in services(state_dir).items()}


def ports(state_dir: Path) -> dict[str, dict]:
    return {
        service: {k: v for k, v in info.items() if k.endswith("_PORT")} for service, info in services(state_dir).items()
    }


def kafka_record(state_dir: Path) -> dict:
    return json.loads((state_dir / "kafka" / "kafka.json").read_text())


async def open_a_position(state_dir: Path) -> dict:
    """The README's walkthrough: a bot, a mark price, a buy signal (202), and the position it opens."""
    key = f"heal-{uuid.uuid4().hex[:8]}"
    token, bot_id, secret = new_bot(state_dir, key)
    marked = run_cli(state_dir, "mark-price", "ETHUSDT", "2942.67")
    assert marked.returncode == 0, marked.stdout + marked.stderr
    status, answer = post_signal(state_dir, {"signal_key": key, "secret": secret, "action": "buy", "symbol": "ETHUSDT"})
    assert (status, answer["status"]) == (202, "accepted")

    async def opened() -> list[dict]:
        return [p for p in positions(state_dir, token, bot_id) if p["status"] == "open"]

    [position] = await eventually(opened, timeout=60, interval=0.5, what="the position open")
    return position


async def test_up_on_a_healthy_system_changes_nothing(state_dir):
    before = (services(state_dir), kafka_record(state_dir), (state_dir / "env").read_text())
    output = up_again(state_dir)
    assert output.count("healthy, left running") == 4, output
    assert (services(state_dir), kafka_record(state_dir), (state_dir / "env").read_text()) == before


async def test_egis_status_json_agrees_with_the_text_form_on_a_healthy_system(state_dir):
    components = assert_json_status_agrees(state_dir)
    assert set(components) == {"kafka", "postgres", *services(state_dir), "prometheus"}
    assert all(c["healthy"] for c in components.values()), components
    assert components["kafka"]["address"] == kafka_record(state_dir)["bootstrap"]
    for service, info in services(state_dir).items():
        assert (components[service]["pid"], components[service]["ports"]["metrics"]) == (
            info["pid"],
            info["EGIS_METRICS_PORT"],
        )


async def test_the_local_commands_print_their_outcome_as_json(state_dir):
    before = services(state_dir)
    done, answer = egis_json(state_dir, "up")  # healthy: left as it is, and says where everything is
    assert done.returncode == 0, done.stderr
    assert "healthy, left running" in done.stderr  # progress goes to stderr, stdout is only the JSON
    assert {s: c["pid"] for s, c in answer["services"].items()} == {s: i["pid"] for s, i in before.items()}
    assert answer["kafka"] == kafka_record(state_dir)["bootstrap"] and "first_operator" not in answer

    done, answer = egis_json(state_dir, "env")
    assert (done.returncode, answer["settings"]) == (0, system_env(state_dir))

    done, answer = egis_json(state_dir, "mark-price", "ETHUSDT", "2942.67")
    assert (done.returncode, answer) == (0, {"symbol": "ETHUSDT", "price": "2942.67", "published": True})

    done, added = egis_json(state_dir, "operators", "add", "dora")
    assert done.returncode == 0 and added["key"] and added["key"] not in done.stderr  # shown once, in the JSON
    assert "dora" in egis_json(state_dir, "operators", "list")[1]["operators"]
    done, answer = egis_json(state_dir, "operators", "revoke", "dora", "--yes")
    assert (done.returncode, answer) == (0, {"operator": "dora", "revoked": True})

    done, made = egis_json(state_dir, "team", "create", "heal-json")
    assert done.returncode == 0 and made["username"] == "team-heal-json" and made["password"] not in done.stderr
    done, answer = egis_json(state_dir, "team", "remove", "heal-json", "--yes")
    assert (done.returncode, answer["removed"]) == (0, True)


async def test_status_names_a_killed_service_and_up_restarts_only_it_on_its_own_ports(state_dir):
    before_pids, before_ports = pids(state_dir), ports(state_dir)
    await kill_9(before_pids["executor"])

    status = run_cli(state_dir, "status")
    assert status.returncode != 0 and "Traceback" not in status.stdout + status.stderr
    lines = status_lines(status.stdout)
    assert lines["executor"].startswith("unhealthy") and "not running" in lines["executor"]
    assert all(line.startswith("healthy") for name, line in lines.items() if name != "executor"), status.stdout
    components = assert_json_status_agrees(state_dir)
    assert (components["executor"]["healthy"], components["executor"]["problem"]) == (False, "not running")

    up_again(state_dir)
    after = pids(state_dir)
    assert after["executor"] != before_pids["executor"]
    assert {s: p for s, p in after.items() if s != "executor"} == {
        s: p for s, p in before_pids.items() if s != "executor"
    }
    assert ports(state_dir) == before_ports
    assert_healthy(state_dir)


async def test_after_kafka_is_killed_up_brings_it_back_on_its_port_and_the_system_serves(state_dir):
    before_kafka, before_pids = kafka_record(state_dir), pids(state_dir)
    await kill_9(before_kafka["pid"])

    status = run_cli(state_dir, "status")
    assert status.returncode != 0
    lines = status_lines(status.stdout)
    assert lines["kafka"].startswith("unhealthy")
    assert all("kafka" in lines[service] for service in before_pids), status.stdout  # each says what it misses

    up_again(state_dir)
    assert kafka_record(state_dir)["bootstrap"] == before_kafka["bootstrap"]
    assert pids(state_dir) == before_pids  # the same address: nothing to restart
    assert_healthy(state_dir)
    position = await open_a_position(state_dir)
    assert position["executed_qty"] == "0.003"


async def test_after_postgres_is_killed_up_brings_it_back_and_the_system_serves(state_dir):
    postgres = json.loads((state_dir / "postgres" / "postgres.json").read_text())
    before_pids = pids(state_dir)
    await kill_9(postgres["pid"])

    status = run_cli(state_dir, "status")
    assert status.returncode != 0
    lines = status_lines(status.stdout)
    assert lines["postgres"].startswith("unhealthy")
    assert all("database" in lines[service] for service in before_pids), status.stdout

    up_again(state_dir)
    assert json.loads((state_dir / "postgres" / "postgres.json").read_text())["port"] == postgres["port"]
    assert pids(state_dir) == before_pids
    assert_healthy(state_dir)
    await open_a_position(state_dir)


async def test_restart_of_one_service_gives_it_a_new_process_on_the_same_ports_and_leaves_the_rest(state_dir):
    before_pids, before_ports = pids(state_dir), ports(state_dir)
    restarted, answer = egis_json(state_dir, "restart", "reconciler")
    assert restarted.returncode == 0, restarted.stderr
    after = pids(state_dir)
    assert answer["restarted"] == "reconciler" and answer["services"]["reconciler"]["pid"] == after["reconciler"]
    assert after["reconciler"] != before_pids["reconciler"]
    assert {s: p for s, p in after.items() if s != "reconciler"} == {
        s: p for s, p in before_pids.items() if s != "reconciler"
    }
    assert ports(state_dir) == before_ports
    assert_healthy(state_dir)


async def test_when_kafkas_port_is_taken_it_comes_back_elsewhere_and_every_service_is_restarted_against_it(state_dir):
    before_kafka, before_pids, before_ports = kafka_record(state_dir), pids(state_dir), ports(state_dir)
    await kill_9(before_kafka["pid"])
    with socket.socket() as squatter:  # someone else's server on Kafka's port, as it happens with free ports
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        port = int(before_kafka["bootstrap"].rsplit(":", 1)[1])

        async def bound() -> bool:
            try:
                squatter.bind(("127.0.0.1", port))
            except OSError:  # the dead broker's sockets may linger a moment
                return False
            return True

        await eventually(bound, timeout=30, interval=0.2, what=f"port {port} taken over")
        squatter.listen()
        output = up_again(state_dir)

    bootstrap = kafka_record(state_dir)["bootstrap"]
    assert bootstrap != before_kafka["bootstrap"]
    assert output.count(f"restarted: kafka {before_kafka['bootstrap']} -> {bootstrap}") == 4, output
    after = pids(state_dir)
    assert all(after[service] != pid for service, pid in before_pids.items())
    assert all(info["kafka"] == bootstrap for info in services(state_dir).values())
    assert ports(state_dir) == before_ports
    assert f"EGIS_KAFKA_BOOTSTRAP_SERVERS='{bootstrap}'" in (state_dir / "env").read_text()
    assert_healthy(state_dir)
