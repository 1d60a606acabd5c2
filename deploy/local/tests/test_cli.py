"""`egis-local up` brings the whole system up as local processes; `down` stops all of it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from local_system import alive, new_bot, post_signal, run_cli, status_lines, system_env  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def _secrets_are_kept_and_shown_once(state_dir: Path, first_up: str) -> None:
    """Kafka logins, the super user and the first operator's key: owner-only files, and the key printed once."""
    for path in ("kafka-users.json", "operator.json", "env", "kafka/kafka-admin.json", "kafka/server.properties"):
        assert stat.S_IMODE((state_dir / path).stat().st_mode) == 0o600, path
    key = json.loads((state_dir / "operator.json").read_text())["key"]
    assert key in first_up and "The first operator, local-admin" in first_up
    logins = json.loads((state_dir / "kafka-users.json").read_text())
    assert set(logins) == {"signal_router", "executor", "ledger", "reconciler", "gateway", "operator", "prices"}
    again = run_cli(state_dir, "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert key not in again.stdout and "kafka users and ACLs applied" not in again.stdout
    token = json.loads((state_dir / "ledger-token.json").read_text())["token"]
    assert token in first_up and token not in again.stdout
    for service in ("ledger", "signal_router", "executor", "reconciler"):  # no service log holds a password
        log = Path(json.loads((state_dir / "services.json").read_text())[service]["log"]).read_text()
        assert not any(password in log for password in logins.values()) and key not in log, service
        assert token not in log, service


def _egis(state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`egis` from a shell that sourced nothing: it finds the local system in the state's env file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")} | {"EGIS_LOCAL_STATE_DIR": str(state_dir)}
    egis = Path(sys.executable).parent / "egis"
    return subprocess.run([str(egis), *args], env=env, capture_output=True, text=True, timeout=120)


def _the_first_up_made_an_admin_token(state_dir: Path, first_up: str) -> None:
    """Made once, shown once, in the env file for `egis`; a revoked one is replaced at the next `up`."""
    token = json.loads((state_dir / "ledger-token.json").read_text())["token"]
    assert stat.S_IMODE((state_dir / "ledger-token.json").stat().st_mode) == 0o600
    assert f"EGIS_LEDGER_TOKEN='{token}'" in (state_dir / "env").read_text()
    assert first_up.count(token) == 1
    ledger_url = system_env(state_dir)["EGIS_LEDGER_URL"]
    assert f"The operators' console: {ledger_url}/" in first_up
    listed = _egis(state_dir, "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    [mine] = [t for t in json.loads(listed.stdout) if t["role"] == "admin" and t["name"] == "local-admin"]
    revoked = _egis(state_dir, "tokens", "revoke", mine["token_id"], "--yes")
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    again = run_cli(state_dir, "up")
    assert again.returncode == 0, again.stdout + again.stderr
    new = json.loads((state_dir / "ledger-token.json").read_text())["token"]
    assert new != token and again.stdout.count(new) == 1
    assert _egis(state_dir, "bots", "list").returncode == 0


def _the_provisioned_operator_runs_a_repair(state_dir: Path) -> None:
    """The README's repair, on a fresh system, from a shell that sourced the env file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")} | system_env(state_dir)
    assert env["EGIS_KAFKA_USERNAME"] == "operator" and env["EGIS_OPERATOR_ID"] == "local-admin"
    done = _drift_report(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("drift-report: ok (dry run)"), done.stdout


def _drift_report(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "drift-report"], env=env, capture_output=True, text=True, timeout=120
    )


def _operators_are_added_and_revoked_while_it_runs(state_dir: Path) -> None:
    added = run_cli(state_dir, "operators", "add", "carol")
    assert added.returncode == 0, added.stdout + added.stderr
    key = added.stdout.split("shown once):\n  ", 1)[1].split()[0]
    assert stat.S_IMODE((state_dir / "operator-keys.json").stat().st_mode) == 0o600
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")} | system_env(state_dir)
    carol = env | {"EGIS_OPERATOR_ID": "carol", "EGIS_OPERATOR_KEY": key}
    done = _drift_report(carol)
    assert done.returncode == 0 and done.stdout.startswith("drift-report: ok"), done.stdout + done.stderr
    listed = run_cli(state_dir, "operators", "list").stdout.split()
    assert listed == ["carol", "local-admin"] and key not in run_cli(state_dir, "operators", "list").stdout
    unconfirmed = run_cli(state_dir, "operators", "revoke", "carol")  # no terminal answers: nothing changes
    assert unconfirmed.returncode == 1 and "nothing changed" in unconfirmed.stdout
    revoked = run_cli(state_dir, "operators", "revoke", "carol", "--yes")
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    refused = _drift_report(carol)
    assert refused.returncode == 1 and "refused" in refused.stdout and "unknown_operator" in refused.stdout
    unknown = run_cli(state_dir, "operators", "rotate", "mallory")
    assert unknown.returncode != 0 and "no operator mallory" in unknown.stderr and "Traceback" not in unknown.stderr
    # This machine's own operator rotated: its env file signs with the new key, and the old one is refused.
    old_key = system_env(state_dir)["EGIS_OPERATOR_KEY"]
    rotated = run_cli(state_dir, "operators", "rotate", "local-admin")
    assert rotated.returncode == 0 and "has the new key" in rotated.stdout, rotated.stdout + rotated.stderr
    mine = env | system_env(state_dir)
    assert mine["EGIS_OPERATOR_KEY"] != old_key
    done = _drift_report(mine)
    assert done.returncode == 0 and done.stdout.startswith("drift-report: ok"), done.stdout + done.stderr
    refused = _drift_report(mine | {"EGIS_OPERATOR_KEY": old_key})
    assert refused.returncode == 1 and "refused" in refused.stdout, refused.stdout + refused.stderr


def _a_team_gets_a_read_only_login(state_dir: Path) -> None:
    made = run_cli(state_dir, "team", "create", "analytics")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "username: team-analytics" in made.stdout and "write nothing" in made.stdout
    bad = run_cli(state_dir, "team", "create", "Bad Name")
    assert bad.returncode != 0 and "team name" in bad.stderr and "Traceback" not in bad.stderr


def _prometheus(url: str, path: str, **params: str):
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def _poll(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.5)
    return found


def _prometheus_scrapes_every_service(up_output: str) -> str:
    """`up` started Prometheus and printed its URL; every service is an up target, labelled with its name."""
    [url] = re.findall(r"prometheus at (http://127\.0\.0\.1:\d+)", up_output)
    active = _prometheus(url, "/api/v1/targets", state="active")["activeTargets"]
    assert sorted((t["labels"]["service"], t["health"]) for t in active) == [
        ("executor", "up"),
        ("ledger", "up"),
        ("reconciler", "up"),
        ("signal_router", "up"),
    ], active
    assert {rule["name"] for group in _prometheus(url, "/api/v1/rules")["groups"] for rule in group["rules"]} >= {
        "EgisServiceDown",
        "EgisDeadLetter",
        "EgisDrift",
    }
    return url


def _dashboards():
    spec = importlib.util.spec_from_file_location("egis_dashboards_build", REPO / "deploy" / "grafana" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _every_panel_query_runs_after_a_signal(state_dir: Path, url: str) -> None:
    """Each dashboard query runs on the real Prometheus, and answers with data wherever its metrics exist."""
    _, _, secret = new_bot(state_dir, "observed")
    marked = run_cli(state_dir, "mark-price", "ETHUSDT", "2942.67")  # the paper venue fills at it
    assert marked.returncode == 0, marked.stdout + marked.stderr
    status, answer = post_signal(
        state_dir, {"signal_key": "observed", "secret": secret, "action": "buy", "symbol": "ETHUSDT"}
    )
    assert (status, answer["status"]) == (202, "accepted")
    _poll(
        lambda: _prometheus(url, "/api/v1/query", query="egis_executor_orders_total")["result"],
        60,
        "Prometheus never saw the order the signal made",
    )
    build = _dashboards()
    queries = build.queries(build.AS_SENT)

    def exported() -> dict[str, str]:
        """The queries whose metrics all exist: those must answer with data."""
        names = set(_prometheus(url, "/api/v1/label/__name__/values"))
        return {
            title: expr
            for title, expr in queries.items()
            if set(re.findall(r"\b(?:egis|faststream)_[a-z_]+|\bup\b", expr)) <= names
        }

    def without_data() -> list[str]:
        return [
            f"{title}: {expr}"
            for title, expr in exported().items()
            if not _prometheus(url, "/api/v1/query", query=expr)["result"]
        ]

    # A rate needs two scrapes of a counter the signal made: a few scrape intervals.
    deadline = time.monotonic() + 30
    while (empty := without_data()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not empty, "\n".join(empty)
    for expr in queries.values():  # the others at least run: Prometheus parses them
        _prometheus(url, "/api/v1/query", query=expr)
    assert len(exported()) >= 30, sorted(set(queries) - set(exported()))  # most panels saw the flow


@pytest.mark.timeout(300)
def test_up_runs_kafka_postgres_and_the_four_services_and_down_stops_them(tmp_path):
    state_dir = tmp_path / "local"
    try:
        up = run_cli(state_dir, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "kafka 4." in up.stdout and "Egis is up" in up.stdout
        services = json.loads((state_dir / "services.json").read_text())
        assert set(services) == {"ledger", "signal_router", "executor", "reconciler"}
        for name, info in services.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{info['EGIS_METRICS_PORT']}/metrics", timeout=5) as page:
                assert b"egis_outbox_published_total" in page.read(), name
            # /metrics answers first; the startup line follows once the relay runs.
            deadline = time.monotonic() + 30
            while '"event": "service_started"' not in Path(info["log"]).read_text():
                assert time.monotonic() < deadline, f"{name} never logged service_started"
                time.sleep(0.1)
        env = run_cli(state_dir, "env").stdout
        assert "EGIS_KAFKA_BOOTSTRAP_SERVERS='127.0.0.1:" in env and "EGIS_DATABASE_URL=" in env
        _secrets_are_kept_and_shown_once(state_dir, up.stdout)
        _the_first_up_made_an_admin_token(state_dir, up.stdout)
        _the_provisioned_operator_runs_a_repair(state_dir)
        _operators_are_added_and_revoked_while_it_runs(state_dir)
        _a_team_gets_a_read_only_login(state_dir)
        status = run_cli(state_dir, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        lines = status_lines(status.stdout)
        assert set(lines) == {"kafka", "postgres", *services, "prometheus"}
        assert all(line.startswith("healthy") for line in lines.values()), status.stdout
        assert "targets 4/4 up" in lines["prometheus"]
        url = _prometheus_scrapes_every_service(up.stdout)
        _every_panel_query_runs_after_a_signal(state_dir, url)
    finally:
        down = run_cli(state_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(alive(int(info["pid"])) for info in services.values())
    status = run_cli(state_dir, "status")
    assert status.returncode != 0 and "Traceback" not in status.stdout + status.stderr
    assert set(status_lines(status.stdout).values()) == {"stopped"}
