"""ruff (lint and format) and mypy, run as the suite runs, so CI keeps the code as it is configured in
pyproject.toml: a finding fails here with the tool's own report."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "--no-cache", "."), ("ruff", "format", "--check", "--no-cache", ".")],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff_is_clean(command):
    result = run(*command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    # No file arguments: the files, strict mode and plugins are pyproject's [tool.mypy]; no cache, as for ruff.
    result = run("mypy", "--cache-dir=/dev/null")
    assert result.returncode == 0, result.stdout + result.stderr
