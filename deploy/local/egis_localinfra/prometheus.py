"""Debian's Prometheus for local mode: scrapes the services `./egis up` started and evaluates Egis's alert rules.

The services' metrics ports are free ones picked at their first start, so Prometheus finds them in a file_sd
list (`targets.json`) written from services.json; it reads the file again whenever it changes, so a service
restarted on other ports needs no Prometheus restart. Config, data, log and the pid and port live under
`<state>/prometheus/`. Nothing here runs when the `prometheus` binary is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from egis_localinfra.ports import free_port, port_is_free

RULES = Path(__file__).resolve().parents[2] / "prometheus" / "alerts.yml"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
SCRAPE_INTERVAL = "5s"


@dataclass(frozen=True)
class Running:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def installed() -> str | None:
    return shutil.which("prometheus")


def write_targets(state: Path, metrics_ports: dict[str, int]) -> Path:
    """The file_sd list: one target per service, labelled with its name (what dashboards and alerts select on)."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / "targets.json"
    targets = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": service}}
        for service, port in sorted(metrics_ports.items())
    ]
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(targets, indent=2))
    temporary.replace(path)  # whole: Prometheus may read the file at any moment
    return path


def write_config(state: Path) -> Path:
    path = state / "prometheus.yml"
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "egis",
                "file_sd_configs": [{"files": [str(state / "targets.json")], "refresh_interval": SCRAPE_INTERVAL}],
            }
        ],
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def status(state: Path) -> Running | None:
    """The recorded Prometheus, if that pid is still a Prometheus."""
    try:
        recorded = json.loads((state / "prometheus.json").read_text())
        cmdline = Path(f"/proc/{recorded['pid']}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    if b"prometheus" not in cmdline.split(b"\0")[0] or f"--config.file={state}".encode() not in cmdline:
        return None
    return Running(int(recorded["pid"]), int(recorded["port"]))


def start(state: Path, metrics_ports: dict[str, int]) -> Running:
    """Prometheus running on a loopback port (the recorded one where free) with targets and rules written now."""
    write_targets(state, metrics_ports)
    config = write_config(state)
    if running := status(state):
        _reload(running)  # the rules file may have changed since it started
        return running
    binary = installed()
    if binary is None:
        raise RuntimeError("prometheus is not installed (./egis installs Debian's package)")
    port = _recorded_port(state)
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={state / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=7d",
        ],
        stdout=(state / "prometheus.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (state / "prometheus.json").write_text(json.dumps({"pid": process.pid, "port": port}))
    running = Running(process.pid, port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(f"{running.url}/-/ready"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(state)
            raise RuntimeError(f"prometheus did not become ready (see {state / 'prometheus.log'})")
        time.sleep(0.2)
    return running


def stop(state: Path) -> bool:
    """Stop the recorded Prometheus; True if one was running."""
    running = status(state)
    if running is None:
        return False
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.pid, sig)  # its own session, so pgid == pid
        deadline = time.monotonic() + wait_s
        while status(state) is not None and _alive(running.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _alive(running.pid):
            break
    return True


def targets_health(running: Running) -> tuple[int, int]:
    """(targets up, targets in all), from Prometheus's own view of its active targets."""
    with urllib.request.urlopen(f"{running.url}/api/v1/targets?state=active", timeout=5) as answer:
        active = json.loads(answer.read())["data"]["activeTargets"]
    return sum(target["health"] == "up" for target in active), len(active)


def _recorded_port(state: Path) -> int:
    try:
        port = int(json.loads((state / "prometheus.json").read_text())["port"])
    except (OSError, ValueError, KeyError):
        return free_port()
    return port if port_is_free(port) else free_port()


def _reload(running: Running) -> None:
    with contextlib.suppress(OSError):
        urllib.request.urlopen(urllib.request.Request(f"{running.url}/-/reload", method="POST"), timeout=5).close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (OSError, urllib.error.HTTPError):
        return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
