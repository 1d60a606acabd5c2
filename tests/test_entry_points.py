"""Every service's own entry point answers --help and --version, and refuses an unknown argument in one line,
without starting: no Kafka or Postgres answers here (the environment points both at closed ports)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import pytest

from egis_common.entry import setting_names
from executor.settings import ExecutorSettings
from ledger.settings import LedgerSettings
from reconciler.settings import ReconcilerSettings
from signal_router.settings import RouterSettings

SERVICES = {
    "signal_router": ("egis-signal-router", RouterSettings),
    "executor": ("egis-executor", ExecutorSettings),
    "ledger": ("egis-ledger", LedgerSettings),
    "reconciler": ("egis-reconciler", ReconcilerSettings),
}
# Nothing listens there: a service that started anyway would fail, not answer.
NOWHERE = {"EGIS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "EGIS_DATABASE_URL": "postgresql+asyncpg://x:y@127.0.0.1:9/z"}


ARGUMENTS = ("--help", "--version", "--verbose")


def run(command: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")} | NOWHERE
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def ways_to_run(service: str) -> list[list[str]]:
    """`python -m <service>.main` and the console script the service's pyproject declares."""
    script = shutil.which(SERVICES[service][0], path=str(Path(sys.executable).parent))
    assert script, f"{SERVICES[service][0]} is not installed next to {sys.executable}"
    return [[sys.executable, "-m", f"{service}.main"], [script]]


@pytest.fixture(scope="module")
def answers() -> dict[tuple[str, int, str], subprocess.CompletedProcess]:
    """Every way to run every service with every argument, run side by side: each mostly waits for its imports,
    one process to a core."""
    runs = {
        (service, way, argument): [*command, argument]
        for service in SERVICES
        for way, command in enumerate(ways_to_run(service))
        for argument in ARGUMENTS
    }
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        done = dict(zip(runs, pool.map(run, runs.values()), strict=True))
    return done


def answered(answers, service: str, argument: str) -> list[subprocess.CompletedProcess]:
    return [answers[(service, way, argument)] for way in range(len(ways_to_run(service)))]


@pytest.mark.parametrize("service", SERVICES)
def test_help_says_what_it_is_and_which_settings_it_reads(service, answers):
    program, settings = SERVICES[service]
    for done in answered(answers, service, "--help"):
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert done.stdout.startswith(f"usage: {program} ")
        listed = " ".join(done.stdout.split("settings (environment variables):", 1)[1].split())
        for name in setting_names(settings):
            assert name in listed, name
        assert {"EGIS_KAFKA_BOOTSTRAP_SERVERS", "EGIS_DATABASE_URL", "EGIS_METRICS_PORT"} <= set(
            setting_names(settings)
        )
        assert f"services/{service}/README.md" in done.stdout
        codes = done.stdout.split("exit codes:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert [line.split()[0] for line in codes] == ["0", "1", "2", "3"], codes
        assert "Kafka or its database did not answer" in codes[3]


@pytest.mark.parametrize("service", SERVICES)
def test_version_is_the_packages_version(service, answers):
    program, _ = SERVICES[service]
    for done in answered(answers, service, "--version"):
        assert (done.returncode, done.stdout, done.stderr) == (0, f"{program} {version(program)}\n", "")


@pytest.mark.parametrize("service", SERVICES)
def test_an_unknown_argument_is_one_line_and_exit_2(service, answers):
    program, _ = SERVICES[service]
    for done in answered(answers, service, "--verbose"):
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.splitlines() == [f"{program}: unrecognized arguments: --verbose (see {program} --help)"]


def test_a_nested_model_is_listed_with_the_delimiter():
    assert "EGIS_PAPER__*" in setting_names(ExecutorSettings)
    assert "EGIS_PAPER" not in setting_names(ExecutorSettings)
