"""The local system's Kafka principals, its first operator and its first admin API token: made at the first
`up`, kept in the state.

Every service logs in as its own principal with the grants of `egis_common.access`, and so do the
webhook gateway, the operators' commands and the mark-price feed. Their passwords, the first
operator's signing key and the admin token are generated once into files only their owner can read;
the operator key and the token are printed once, when they are made, and never logged.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from egis_common import access
from egis_localinfra import kafka_auth
from egis_localinfra.kafka import provision_access

USERS_FILE = "kafka-users.json"
OPERATOR_FILE = "operator.json"
KEYS_FILE = "operator-keys.json"  # every operator the reconciler accepts: {"operator id": "signing key"}
LEDGER_TOKEN_FILE = "ledger-token.json"  # the first admin API token: {"token_id", "token"}
APPLIED_FILE = "access.applied"  # in the broker's own state: a new broker has none, and gets everything again
PRINCIPALS = (*access.SERVICES, "gateway", "operator", "prices")
FIRST_OPERATOR = "local-admin"


def users(state_dir: Path) -> dict[str, kafka_auth.KafkaUser]:
    """Every principal's login, made on first use."""
    path = state_dir / USERS_FILE
    known = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in PRINCIPALS if name not in known]
    if missing:
        known |= {name: kafka_auth.new_password() for name in missing}
        kafka_auth.write_secret(path, known)
    return {name: kafka_auth.KafkaUser(name, known[name]) for name in PRINCIPALS}


def grants() -> list[access.AclBinding]:
    """Every principal's ACLs, exactly its grants."""
    return [binding for name in PRINCIPALS for binding in access.bindings(access.GRANTS[name])]


def apply(kafka_state: Path, bootstrap: str, logins: Mapping[str, kafka_auth.KafkaUser]) -> bool:
    """Users and ACLs on the broker, unless this broker already has exactly these; True when applied now."""
    bindings = grants()
    digest = hashlib.sha256(repr(([(u.name, u.password) for u in logins.values()], bindings)).encode()).hexdigest()
    marker = kafka_state / APPLIED_FILE
    if marker.exists() and marker.read_text() == digest:
        return False
    provision_access(kafka_state, bootstrap, users=logins.values(), grants=bindings)
    marker.write_text(digest)
    return True


def login_env(user: kafka_auth.KafkaUser, prefix: str = "EGIS_KAFKA") -> dict[str, str]:
    return {f"{prefix}_USERNAME": user.name, f"{prefix}_PASSWORD": user.password}


def service_env(service: str, logins: Mapping[str, kafka_auth.KafkaUser], keys_file: Path) -> dict[str, str]:
    """What only this service is given: its own login, the gateway's for the router, the operators' keys file for
    the reconciler (read again whenever it changes: `./egis operators`)."""
    env = login_env(logins[service])
    if service == "signal_router":
        env |= login_env(logins["gateway"], "EGIS_GATEWAY_KAFKA")
    if service == "reconciler":
        env["EGIS_OPERATOR_KEYS_FILE"] = str(keys_file)
    return env


def operator(state_dir: Path) -> tuple[tuple[str, str], bool]:
    """((operator id, signing key), made now): the first operator, so repairs work on a fresh system.

    `operator.json` is this machine's operator (the one `./egis env` signs as); every operator the reconciler
    accepts is in the keys file, which this also makes."""
    path = state_dir / OPERATOR_FILE
    if path.exists():
        data = json.loads(path.read_text())
        return (data["operator_id"], data["key"]), False
    made = (FIRST_OPERATOR, new_operator_key())
    set_this_operator(state_dir, *made)
    # Operators added before the first `up` stay; the first one joins them.
    write_operator_keys(state_dir, {**operator_keys(state_dir), made[0]: made[1]})
    return made, True


def this_operator(state_dir: Path) -> str | None:
    """The operator this machine signs as (`./egis env`), once the first `up` has made it."""
    path = state_dir / OPERATOR_FILE
    return json.loads(path.read_text())["operator_id"] if path.exists() else None


def set_this_operator(state_dir: Path, operator_id: str, key: str) -> None:
    kafka_auth.write_secret(state_dir / OPERATOR_FILE, {"operator_id": operator_id, "key": key})


def new_operator_key() -> str:
    return secrets.token_urlsafe(32)


def operator_keys(state_dir: Path) -> dict[str, str]:
    path = state_dir / KEYS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write_operator_keys(state_dir: Path, keys: Mapping[str, str]) -> Path:
    """The whole file at once (a new file renamed over the old): the reconciler never reads half of it."""
    path = state_dir / KEYS_FILE
    fresh = path.with_name(path.name + ".new")
    kafka_auth.write_secret(fresh, dict(keys))
    os.replace(fresh, path)
    return path


def ledger_token(state_dir: Path, database_url: str, ledger_url: str) -> tuple[str, bool]:
    """(the admin API token, made now): the one kept in the state while the ledger accepts it, else a new one.

    Made as on any deployment, by `egis-ledger-admin create-token` straight in the database: the first token
    cannot be asked of an API that wants one. A token revoked since, or a database made afresh, gets a new one."""
    path = state_dir / LEDGER_TOKEN_FILE
    if path.exists():
        token = json.loads(path.read_text())["token"]
        if _refused(ledger_url, token) is not True:
            return token, False
    made = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "create-token", "--role", "admin", "--name", FIRST_OPERATOR, "--json"],
        env={**os.environ, "EGIS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if made.returncode != 0:
        raise RuntimeError(f"egis-ledger-admin create-token failed: {(made.stderr.strip() or made.stdout).strip()}")
    issued = json.loads(made.stdout)
    kafka_auth.write_secret(path, {"token_id": issued["token_id"], "token": issued["token"]})
    return issued["token"], True


def _refused(ledger_url: str, token: str) -> bool | None:
    """True when the ledger refuses the token (401), False when it accepts it, None when it does not say."""
    request = urllib.request.Request(f"{ledger_url}/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            return False
    except urllib.error.HTTPError as error:
        return True if error.code == 401 else None
    except OSError:
        return None
