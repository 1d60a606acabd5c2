"""`egis-local up` brings the whole system up as local processes; `down` stops all of it."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from local_system import alive, run_cli, status_lines  # noqa: E402


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
        status = run_cli(state_dir, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        lines = status_lines(status.stdout)
        assert set(lines) == {"kafka", "postgres", *services}
        assert all(line.startswith("healthy") for line in lines.values()), status.stdout
    finally:
        down = run_cli(state_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(alive(int(info["pid"])) for info in services.values())
    status = run_cli(state_dir, "status")
    assert status.returncode != 0 and "Traceback" not in status.stdout + status.stderr
    assert set(status_lines(status.stdout).values()) == {"stopped"}
