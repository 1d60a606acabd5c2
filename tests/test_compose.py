"""docker-compose.yml agrees with the repository: services, settings, ports, files."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import stat
from pathlib import Path

import pytest
import yaml

from egis_common import access
from egis_common.settings import EgisSettings
from egis_localinfra import compose, local_access

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


ONE_SHOT = {"init", "kafka-access"}  # jobs that complete instead of staying healthy
TOOLS = {"operator", "prices"}  # run by hand: `docker compose run --rm <tool> ...`


def test_it_names_the_whole_system_each_with_a_health_check():
    services = COMPOSE["services"]
    assert set(services) == {
        "kafka",
        "kafka-access",
        "postgres",
        "init",
        *EGIS_SERVICES,
        "prometheus",
        "grafana",
        *TOOLS,
    }
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name, service in services.items():
        if name not in ONE_SHOT | TOOLS:
            assert "healthcheck" in service, name
    assert all(services[tool]["profiles"] == ["tools"] for tool in TOOLS)


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
        assert key.removeprefix("EGIS_").lower() in cls.model_fields, (
            f"{service}: {key} is no setting of {cls.__name__}"
        )
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
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in scrape["scrape_configs"]}
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
    assert (
        url
        == f"postgresql+asyncpg://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert init["environment"]["EGIS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "PLAINTEXT://kafka:9092" in COMPOSE["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_mounted_files_exist_and_the_dashboard_queries_real_metrics():
    for name in ("prometheus", "grafana"):
        for volume in COMPOSE["services"][name]["volumes"]:
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), source
    exprs = " ".join(
        target["expr"]
        for path in (ROOT / "deploy/grafana/dashboards").glob("*.json")
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    )
    from prometheus_client import REGISTRY

    for module in ("egis_common.metrics", "egis_venues.binance.stream", *(f"{s}.metrics" for s in EGIS_SERVICES)):
        importlib.import_module(module)
    exported = {metric.name for metric in REGISTRY.collect()}
    used = set(re.findall(r"egis_[a-z_]+", exprs))
    assert {u.removesuffix("_bucket") for u in used} <= exported | {f"{name}_total" for name in exported}


# --- parity with local mode: Kafka's logins and ACLs, versions, secrets -----------------------------------


def _password_reference(principal: str) -> str:
    return "${" + compose.password_variable(principal) + ":?"


def test_kafka_requires_a_login_and_allows_nothing_without_an_acl():
    kafka = COMPOSE["services"]["kafka"]["environment"]
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_SUPER_USERS"] == "User:admin"
    assert "SCRAM-SHA-512" in kafka["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
    protocols = dict(pair.split(":") for pair in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}  # no listener without a login


@pytest.mark.parametrize("service", sorted(EGIS_SERVICES))
def test_each_service_logs_in_as_its_own_principal_as_in_local_mode(service):
    env = environment(service)
    expected = local_access.service_env(
        service, {name: _Placeholder(name) for name in local_access.PRINCIPALS}, Path("operator-keys.json")
    )
    assert {
        key
        for key in env
        if key.startswith(("EGIS_KAFKA_USERNAME", "EGIS_GATEWAY_KAFKA", "EGIS_KAFKA_PASSWORD", "EGIS_OPERATOR"))
    } == set(expected)
    assert env["EGIS_KAFKA_USERNAME"] == service and env["EGIS_KAFKA_PASSWORD"].startswith(_password_reference(service))
    if service == "signal_router":
        assert env["EGIS_GATEWAY_KAFKA_USERNAME"] == "gateway"
        assert env["EGIS_GATEWAY_KAFKA_PASSWORD"].startswith(_password_reference("gateway"))


class _Placeholder:
    def __init__(self, name: str) -> None:
        self.name, self.password = name, "x"


def test_the_tools_and_the_setup_job_log_in_as_their_principals():
    for tool in TOOLS:
        env = COMPOSE["services"][tool]["environment"]
        assert env["EGIS_KAFKA_USERNAME"] == tool and env["EGIS_KAFKA_PASSWORD"].startswith(_password_reference(tool))
    assert importlib.util.find_spec("egis_common.mark_price") is not None
    init = COMPOSE["services"]["init"]["environment"]
    assert init["EGIS_KAFKA_USERNAME"] == "admin" and init["EGIS_KAFKA_PASSWORD"].startswith(
        _password_reference("admin")
    )


def test_the_access_job_runs_the_current_script_with_every_principals_secret():
    assert compose.main(["--check"]) == 0, "python -m egis_localinfra.compose --write"
    job = COMPOSE["services"]["kafka-access"]
    assert job["image"] == COMPOSE["services"]["kafka"]["image"]
    assert job["volumes"] == ["./deploy/kafka/compose/access.sh:/opt/egis/access.sh:ro"]
    referenced = {key for key in job["environment"] if key.endswith("_PASSWORD")}
    assert referenced == {compose.password_variable(p) for p in ("admin", *local_access.PRINCIPALS)}
    script = compose.access_script()
    for principal in local_access.PRINCIPALS:
        for binding in access.bindings(access.GRANTS[principal]):
            assert any(
                line.startswith(f"acls --add --allow-principal {binding.principal} ")
                and f"--operation {binding.operation.title()}" in line
                and f" {binding.resource} " in line
                for line in script.splitlines()
            ), binding


def test_compose_secrets_give_every_variable_the_file_references(tmp_path, monkeypatch):
    monkeypatch.setattr(compose, "ENV_FILE", tmp_path / ".env")
    monkeypatch.setattr(compose, "JAAS_FILE", tmp_path / "secrets" / "kafka_jaas.conf")
    monkeypatch.setattr(compose, "OPERATORS_DIR", tmp_path / "secrets" / "operators")
    written = compose.write_secrets()
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in written)
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    defined = set(values)
    # The reconciler's keys file holds the operator the tool service signs as, with the same key.
    keys = json.loads((tmp_path / "secrets" / "operators" / "operator-keys.json").read_text())
    assert keys == {values["EGIS_OPERATOR_ID"]: values["EGIS_OPERATOR_KEY"]}
    mount = f"./{(ROOT / 'deploy/compose/secrets/operators').relative_to(ROOT)}:/run/egis/operators:ro"
    assert mount in COMPOSE["services"]["reconciler"]["volumes"]
    assert environment("reconciler")["EGIS_OPERATOR_KEYS_FILE"] == "/run/egis/operators/operator-keys.json"
    used = set(re.findall(r"\$\{(EGIS_[A-Z_]+)", (ROOT / "docker-compose.yml").read_text()))
    assert used <= defined, used - defined
    with pytest.raises(SystemExit):
        compose.write_secrets()  # kept: new secrets only on purpose
    gitignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in gitignored and "deploy/compose/secrets/" in gitignored


def test_kafka_and_postgres_are_the_major_versions_of_local_mode():
    pom = (ROOT / "deploy/kafka/pom.xml").read_text()
    local_kafka = re.search(r"<kafka.version>([\d.]+)</kafka.version>", pom)[1]
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{local_kafka}"
    from egis_localinfra.postgres import PG_ROOT

    installed = (
        sorted((int(p.name) for p in PG_ROOT.glob("*") if p.name.isdigit()), reverse=True) if PG_ROOT.exists() else []
    )
    if not installed:
        pytest.skip("no local PostgreSQL installed to compare with")
    assert COMPOSE["services"]["postgres"]["image"] == f"postgres:{installed[0]}"
