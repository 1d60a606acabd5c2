"""A service started while its database or Kafka does not answer says so in one line on stderr, naming itself and
what did not answer, and exits 3, within a bounded time: never a traceback (that goes to its JSON log on stdout).

Each of the four services' console scripts, once with the database at a closed port, once with Kafka at one (and a
real, migrated database, so the start gets as far as Kafka); the eight runs side by side in one fixture, since each
mostly waits for its own imports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SERVICES = {
    "signal_router": "egis-signal-router",
    "executor": "egis-executor",
    "ledger": "egis-ledger",
    "reconciler": "egis-reconciler",
}
CLOSED = "127.0.0.1:9"  # nothing listens there
EXIT_UNAVAILABLE = 3
# Imports take most of it on a loaded 2-core machine; a start that retried Kafka or the database for ever would not
# end at all.
START_FAILURE_BOUND_S = 90.0


def run(command: list[str], settings: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")} | settings
    started = time.monotonic()
    # The bound is the test's: past it the run fails the test instead of hanging the suite.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=START_FAILURE_BOUND_S * 2)
    return done, time.monotonic() - started


@pytest.fixture(scope="module")
def failed_starts(test_database) -> dict[tuple[str, str], tuple[subprocess.CompletedProcess, float]]:
    # Free ports for whatever listens before the failure: another service on this machine may hold the defaults.
    ports = {"EGIS_METRICS_PORT": "0", "EGIS_HTTP_PORT": "0"}
    unreachable = {
        "database": ports
        | {"EGIS_DATABASE_URL": f"postgresql+asyncpg://x:y@{CLOSED}/z", "EGIS_KAFKA_BOOTSTRAP_SERVERS": CLOSED},
        "kafka": ports | {"EGIS_DATABASE_URL": test_database.url, "EGIS_KAFKA_BOOTSTRAP_SERVERS": CLOSED},
    }
    runs = {
        (service, missing): ([script(program)], settings)
        for service, program in SERVICES.items()
        for missing, settings in unreachable.items()
    }
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(runs, pool.map(lambda r: run(*r), runs.values()), strict=True))


def script(program: str) -> str:
    found = shutil.which(program, path=str(Path(sys.executable).parent))
    assert found, f"{program} is not installed next to {sys.executable}"
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_an_unreachable_database_is_one_line_naming_it_and_exit_3(service, failed_starts):
    done, took = failed_starts[(service, "database")]
    assert (done.returncode, "Traceback" in done.stderr) == (EXIT_UNAVAILABLE, False), done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith(
        f"{SERVICES[service]}: the database at {CLOSED}/z does not answer: ConnectionRefusedError"
    ), done.stderr
    assert took < START_FAILURE_BOUND_S
    assert '"event": "service_start_failed"' in done.stdout and "Traceback" in done.stdout  # the log keeps it


@pytest.mark.parametrize("service", SERVICES)
def test_an_unreachable_kafka_is_one_line_naming_it_and_exit_3(service, failed_starts):
    done, took = failed_starts[(service, "kafka")]
    assert (done.returncode, "Traceback" in done.stderr) == (EXIT_UNAVAILABLE, False), done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith(
        f"{SERVICES[service]}: Kafka at {CLOSED} does not answer: KafkaConnectionError: Unable to bootstrap"
    ), done.stderr
    assert took < START_FAILURE_BOUND_S
