"""One short trial of every fault kind, with every check of the fault suite: the safety net in `./egis test`.

The module runs `bench/faults/run.py --ci --seed 1` once, as its own process with its
own Kafka, durable Postgres, local Binance server and service processes (the same code
as the full run, with shorter loads), then each test reads one kind's verdict. Seed 1
kills the executor between its exchange call and the commit of the outcome in
kill_at_point, and the executor in kill_random and rebalance. Replay a failing kind
with `uv run python bench/faults/run.py --ci --kind <kind> --seed 1`; its report names
each violation and where the trial's logs and evidence are.

Every kind must hold every check: a kind that fails is a regression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "faults"))
from schedule import KINDS  # noqa: E402

SEED = 1
SUBSET_TIMEOUT_S = 900

pytestmark = [pytest.mark.infra, pytest.mark.timeout(SUBSET_TIMEOUT_S + 60)]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("faults")
    # The run starts its own Kafka and Postgres: nothing of this session's may leak into its services.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")}
    command = [
        sys.executable,
        str(REPO / "bench" / "faults" / "run.py"),
        "--ci",
        "--kinds",
        "all",
        "--seed",
        str(SEED),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=SUBSET_TIMEOUT_S)
    results = out / "results.json"
    assert results.exists(), (
        f"the fault run produced no results (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return {r["kind"]: {**r, "report": done.stdout} for r in json.loads(results.read_text())["results"]}


@pytest.mark.parametrize("kind", KINDS)
def test_after_the_fault_every_check_holds(kind: str, verdicts: dict[str, dict]):
    verdict = verdicts[kind]
    assert not verdict.get("error"), f"the trial did not reach a verdict: {verdict['error']}"
    assert verdict["fired"], f"the fault never fired, so the trial tested nothing: {verdict['notes']}"
    violations = [f"{f['check']}: {f['subject']}: {f['detail']}" for f in verdict["findings"] if f["violation"]]
    assert violations == [], f"{kind} (trial in {verdict['trial_dir']}):\n" + "\n".join(violations[:20])
