"""Authentication and ACLs for the local Kafka: SASL/SCRAM-SHA-512 for clients, default deny.

A secure broker keeps its super user's credential in `kafka-admin.json` (0600) in its state
directory, generated at the first start and bootstrapped into the metadata log when the storage
is formatted (KIP-900). The controller listener uses PLAIN with the same credential from the
broker's own configuration, because SCRAM credentials live in the metadata log the controller
serves. Users and ACLs are then applied with the Java AdminClient (`deploy/kafka/access`),
since aiokafka has no API for either; nothing secret goes on a command line.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from egis_common.access import AclBinding
from egis_common.kafka_login import MECHANISM, Login, client_options

ADMIN_FILE = "kafka-admin.json"
ADMIN_USER = "admin"
ACCESS_TOOL = Path(__file__).resolve().parent.parent.parent / "kafka" / "access" / "EgisAccess.java"
PROVISION_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class KafkaUser:
    name: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"KafkaUser({self.name!r})"

    def login(self) -> Login:
        return Login(self.name, SecretStr(self.password))

    def client_options(self) -> dict[str, Any]:
        """aiokafka's keyword arguments for a client that logs in as this user."""
        return client_options(self.login())


def new_password() -> str:
    return secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: safe inside JAAS quotes and the --add-scram syntax


def write_secret(path: Path, data: dict) -> None:
    """A file only its owner can read, created so (never world-readable for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    os.chmod(path, 0o600)


def admin_user(state_dir: Path, *, create: bool = False) -> KafkaUser | None:
    """The broker's super user, from its state directory; made on a first secure start when `create`."""
    path = Path(state_dir) / ADMIN_FILE
    if path.exists():
        data = json.loads(path.read_text())
        return KafkaUser(data["user"], data["password"])
    if not create:
        return None
    user = KafkaUser(ADMIN_USER, new_password())
    write_secret(path, {"user": user.name, "password": user.password})
    return user


def broker_properties(port: int, controller_port: int, admin: KafkaUser) -> dict[str, str]:
    scram = f'username="{admin.name}" password="{admin.password}"'
    plain = f'{scram} user_{admin.name}="{admin.password}"'
    return {
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": (
            f"org.apache.kafka.common.security.scram.ScramLoginModule required {scram};"
        ),
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain};"
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{admin.name}",
        "allow.everyone.if.no.acl.found": "false",
    }


def format_arguments(admin: KafkaUser) -> list[str]:
    """The super user's SCRAM credential, written into the metadata log at format time (KIP-900)."""
    return ["--add-scram", f"{MECHANISM}=[name={admin.name},password={admin.password}]"]


def provision(
    java_cmd: list[str],
    bootstrap: str,
    admin: KafkaUser,
    users: Iterable[KafkaUser] = (),
    grants: Iterable[AclBinding] = (),
    revoke: Iterable[str] = (),
    drop_users: Iterable[str] = (),
) -> str:
    """Apply users and ACLs (idempotent); the tool's one-line summary. Raises with its errors on failure."""
    lines = [f"revoke {principal}" for principal in revoke]
    lines += [f"drop-user {name}" for name in drop_users]
    lines += [f"user {user.name} {user.password}" for user in users]
    lines += [" ".join(("allow", *binding.fields())) for binding in grants]
    env = {
        **os.environ,
        "EGIS_KAFKA_BOOTSTRAP": bootstrap,
        "EGIS_KAFKA_ADMIN_USER": admin.name,
        "EGIS_KAFKA_ADMIN_PASSWORD": admin.password,
    }
    proc = subprocess.run(
        [*java_cmd, str(ACCESS_TOOL)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=PROVISION_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"Kafka users and ACLs not applied ({proc.returncode}):\n{_quiet(proc.stderr)}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def _quiet(stderr: str) -> str:
    """The tool's own messages, without the client library's log noise."""
    lines = [line for line in stderr.splitlines() if not line.startswith(("SLF4J", "log4j", "WARN", "INFO"))]
    return "\n".join(lines[-20:])
