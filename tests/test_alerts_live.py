"""A few alert rules fire on a real Prometheus scraping the real system when their condition is staged, and not
before (bench/observability/alerts_live.py, which runs every rule; this is its short subset)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "observability" / "alerts_live.py"
SUBSET = ("EgisDeadLetter", "EgisDrift", "EgisServiceDown")


def load_script():
    spec = importlib.util.spec_from_file_location("egis_alerts_live", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_scaled_rules_change_only_for_durations_and_seconds_thresholds():
    script = load_script()
    shipped = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    scaled = script.scaled_rules((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text(), 0.1)
    pairs = {
        rule["alert"]: (rule, other)
        for group, other_group in zip(shipped["groups"], scaled["groups"], strict=True)
        for rule, other in zip(group["rules"], other_group["rules"], strict=True)
    }
    assert pairs["EgisServiceDown"][1]["for"] == "6s" and pairs["EgisConsumerLagGrowing"][1]["for"] == "30s"
    assert pairs["EgisPendingReconciliationOld"][1]["expr"].endswith("> 60")
    assert pairs["EgisOutboxOld"][1]["expr"].endswith("> 6")
    for name, (rule, other) in pairs.items():
        assert {k: v for k, v in rule.items() if k not in ("for", "expr")} == {
            k: v for k, v in other.items() if k not in ("for", "expr")
        }, name

        # Only numbers after a *_seconds metric's ">" may differ: with them masked, the expressions are the same.
        def masked(expr: str) -> str:
            return script.re.sub(r"(_seconds(?:\{[^}]*\})?\s*>\s*)\d+(?:\.\d+)?", r"\1N", expr)

        assert masked(rule["expr"]) == masked(other["expr"]), name
    assert pairs["EgisConsumerLagGrowing"][1]["expr"] == pairs["EgisConsumerLagGrowing"][0]["expr"]  # 100 records


@pytest.mark.timeout(420)
def test_the_fast_alerts_fire_on_the_running_system_when_staged_and_only_then(tmp_path):
    results = tmp_path / "alerts.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--rules-scale",
            "0.1",
            "--only",
            ",".join(SUBSET),
            "--json",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no Egis alert pending or firing on the healthy system" in done.stdout
    seen = json.loads(results.read_text())
    assert seen["mode"].startswith("rules scaled by 0.1")
    assert set(seen["alerts"]) == set(SUBSET)
    for name, result in seen["alerts"].items():
        assert isinstance(result["fired_after_s"], float), (name, result)
    assert isinstance(seen["alerts"]["EgisDrift"]["cleared_after_s"], float)
    assert isinstance(seen["alerts"]["EgisServiceDown"]["cleared_after_s"], float)
