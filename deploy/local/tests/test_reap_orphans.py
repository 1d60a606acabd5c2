"""A test session killed before its teardown leaves Kafka running; the next session stops it."""

import os
import shutil
import subprocess
import sys

import pytest

from egis_localinfra.kafka import kafka_status, start_kafka
from egis_localinfra.pytest_plugin import INFRA_PREFIX, OWNER_FILE, reap_orphans

pytestmark = pytest.mark.skipif(not shutil.which("java"), reason="needs java")


def _last_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_orphaned_session_is_stopped_and_a_live_one_is_left_alone(tmp_path):
    orphan, alive, unowned = (tmp_path / f"{INFRA_PREFIX}{name}" for name in ("orphan", "alive", "unowned"))
    for directory in (orphan, alive, unowned):
        directory.mkdir()
    (orphan / OWNER_FILE).write_text(str(_last_pid()))
    (alive / OWNER_FILE).write_text(str(os.getpid()))
    broker = start_kafka(orphan / "kafka")
    try:
        assert reap_orphans(tmp_path) == [orphan]
        assert kafka_status(orphan / "kafka") is None and not orphan.exists()
        assert alive.exists() and unowned.exists()
    finally:
        subprocess.run(["kill", "-9", str(broker.pid)], check=False)
