"""The committed Grafana dashboards are what deploy/grafana/build.py makes now, they pass Grafana's own dashboard
schema (deploy/grafana/schema/), and every panel's query is valid PromQL (Prometheus's own parser, through promtool)."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "deploy" / "grafana" / "build.py"
SCHEMA = ROOT / "deploy" / "grafana" / "schema" / "dashboard.jsonschema.json"


def load_build():
    spec = importlib.util.spec_from_file_location("egis_dashboards_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_committed_dashboards_are_up_to_date():
    result = subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_committed_json_holds_every_query_of_the_generator():
    build = load_build()
    committed = {
        f"{path.stem}: {panel['title']}": target["expr"]
        for path in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    }
    assert committed == build.queries()
    assert len(committed) >= 40


def test_every_panel_query_is_valid_promql(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: ./egis installs Debian's prometheus package, which brings it"
    build = load_build()
    queries = build.queries(build.AS_SENT)
    assert not [expr for expr in queries.values() if "$" in expr], "a Grafana variable AS_SENT does not know"
    rules = {
        "groups": [
            {
                "name": "panels",
                "rules": [
                    {"record": f"egis:panel_{number}", "expr": expr} for number, expr in enumerate(queries.values())
                ],
            }
        ]
    }
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "panels.yml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def grafana_schema() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def committed_dashboards() -> dict[str, dict]:
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    }


def test_every_committed_dashboard_passes_grafanas_schema():
    validator = grafana_schema()
    dashboards = committed_dashboards()
    assert len(dashboards) == 4
    errors = {
        f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"
        for name, dashboard in dashboards.items()
        for error in validator.iter_errors(dashboard)
    }
    assert errors == set()


def test_the_schema_refuses_a_broken_dashboard():
    validator = grafana_schema()
    dashboard = copy.deepcopy(committed_dashboards()["egis-overview"])
    panel = next(p for p in dashboard["panels"] if p["type"] != "row")
    panel["gridPos"] = {"h": "8", "w": 12, "x": 0, "y": 0}
    assert not validator.is_valid(dashboard)
    panel["gridPos"] = {"h": 8, "w": 12, "x": 0, "y": 0}
    panel["options"] = None  # what the builder makes when no option is set
    assert not validator.is_valid(dashboard)
    panel["options"] = {}
    assert validator.is_valid(dashboard)
