"""docker-compose.yml agrees with the repository: services, settings, ports, files."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

from egis_common.settings import EgisSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
EGIS_SERVICES = {
    "signal_router": "signal_router.settings:RouterSettings",
    "ledger": "ledger.settings:LedgerSettings",
    "executor": "executor.settings:ExecutorSettings",
    "reconciler": "reconciler.settings:ReconcilerSettings",
}


def settings_class(service: str) -> type[EgisSettings]:
    module, name = EGIS_SERVICES[service].split(":")
    return getattr(importlib.import_module(module), name)


def environment(service: str) -> dict[str, str]:
    return {key: str(value) for key, value in COMPOSE["services"][service]["environment"].items()}


def test_it_names_the_whole_system_each_with_a_health_check():
    services = COMPOSE["services"]
    assert set(services) == {"kafka", "postgres", "init", *EGIS_SERVICES, "prometheus", "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name, service in services.items():
        if name != "init":  # a one-shot job: it completes instead of staying healthy
            assert "healthcheck" in service, name


@pytest.mark.parametrize("service", sorted(EGIS_SERVICES))
def test_every_egis_service_exists_in_the_repo_and_its_command_module_imports(service):
    assert (ROOT / "services" / service / service / "flow.py").is_file()
    command = COMPOSE["services"][service]["command"]
    assert command[:2] == ["python", "-m"] and command[2] == f"{service}.main"
    assert importlib.util.find_spec(command[2]) is not None


@pytest.mark.parametrize("service", sorted(EGIS_SERVICES))
def test_environment_matches_the_settings_class(service, monkeypatch):
    cls = settings_class(service)
    env = environment(service)
    for key in env:
        assert key.startswith("EGIS_"), key
        assert key.removeprefix("EGIS_").lower() in cls.model_fields, f"{service}: {key} is no setting of {cls.__name__}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = cls()  # the values validate, not only the names
    assert settings.service_name == service and settings.db_schema == service
    assert settings.metrics_host == "0.0.0.0"


@pytest.mark.parametrize("service", sorted(EGIS_SERVICES))
def test_ports_agree_with_settings_and_prometheus(service, monkeypatch):
    cls = settings_class(service)
    env = environment(service)
    assert int(env["EGIS_METRICS_PORT"]) == cls.model_fields["metrics_port"].default
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in scrape["scrape_configs"]
    }
    assert targets[service] == f"{service}:{env['EGIS_METRICS_PORT']}"
    if "http_port" in cls.model_fields:
        assert int(env["EGIS_HTTP_PORT"]) == cls.model_fields["http_port"].default
        assert COMPOSE["services"][service]["ports"] == [f"{env['EGIS_HTTP_PORT']}:{env['EGIS_HTTP_PORT']}"]
    else:
        assert "ports" not in COMPOSE["services"][service]


def test_init_job_runs_the_system_setup_against_the_same_kafka_and_database():
    init = COMPOSE["services"]["init"]
    assert importlib.util.find_spec(init["command"][2]) is not None
    for service in EGIS_SERVICES:
        env = environment(service)
        assert env["EGIS_DATABASE_URL"] == init["environment"]["EGIS_DATABASE_URL"]
        assert env["EGIS_KAFKA_BOOTSTRAP_SERVERS"] == init["environment"]["EGIS_KAFKA_BOOTSTRAP_SERVERS"]
    url = init["environment"]["EGIS_DATABASE_URL"]
    postgres = COMPOSE["services"]["postgres"]["environment"]
    assert url == f"postgresql+asyncpg://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/{postgres['POSTGRES_DB']}"
    assert init["environment"]["EGIS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "PLAINTEXT://kafka:9092" in COMPOSE["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_mounted_files_exist_and_the_dashboard_queries_real_metrics():
    for name in ("prometheus", "grafana"):
        for volume in COMPOSE["services"][name]["volumes"]:
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), source
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/egis-overview.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    from egis_common import metrics

    exported = {m.describe()[0].name for m in (metrics.HANDLER_SECONDS, metrics.DEAD_LETTERED, metrics.OUTBOX_PUBLISHED)}
    used = set(re.findall(r"egis_[a-z_]+", exprs))
    assert {u.removesuffix("_bucket").removesuffix("_total") for u in used} <= exported
