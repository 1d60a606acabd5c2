"""The compose `kafka-access` job's script, run with Kafka's own tools against a real secure broker.

docker-compose cannot run here; its access script can. It gives every principal its SCRAM
credential and exactly its grants, so the services of compose log in and act as in local mode.
"""

import asyncio
import os
import shutil
import stat
import subprocess

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAuthorizationFailedError

from egis_common.topics import ADMIN_COMMANDS, EXECUTIONS, INTENTS, MARK_PRICES
from egis_localinfra import compose, kafka_auth
from egis_localinfra.kafka import _java_cmd, admin_client_options, ensure_jars, start_kafka, stop_kafka
from egis_localinfra.local_access import PRINCIPALS

pytestmark = pytest.mark.skipif(not (shutil.which("java") and shutil.which("mvn")), reason="needs java and mvn on PATH")
TOOLS = {"kafka-configs.sh": "kafka.admin.ConfigCommand", "kafka-acls.sh": "org.apache.kafka.tools.AclCommand"}


def _kafka_bin(directory) -> str:
    """kafka-configs.sh and kafka-acls.sh as the kafka image has them: the same classes, from our jars."""
    directory.mkdir()
    java = " ".join(f"'{part}'" for part in _java_cmd(ensure_jars()))
    for script, main_class in TOOLS.items():
        path = directory / script
        path.write_text(f'#!/bin/sh\nexec {java} {main_class} "$@"\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(directory)


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    state = tmp_path_factory.mktemp("compose-kafka")
    info = start_kafka(state / "kafka", secure=True)
    admin = kafka_auth.admin_user(state / "kafka")
    passwords = {name: kafka_auth.new_password() for name in PRINCIPALS}
    asyncio.run(_create_topics(info.bootstrap, admin_client_options(state / "kafka")))
    env = {
        **os.environ,
        "EGIS_KAFKA_BOOTSTRAP": info.bootstrap,
        "KAFKA_BIN": _kafka_bin(state / "bin"),
        # Here the super user has its SCRAM credential from the format; compose's broker knows it by PLAIN.
        "EGIS_KAFKA_ADMIN_MECHANISM": "SCRAM-SHA-512",
        "EGIS_KAFKA_ADMIN_PASSWORD": admin.password,
        **{compose.password_variable(name): password for name, password in passwords.items()},
    }
    done = subprocess.run(["bash", str(compose.ACCESS_SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "kafka users and ACLs applied" in done.stdout
    yield info.bootstrap, {name: kafka_auth.KafkaUser(name, password) for name, password in passwords.items()}
    stop_kafka(state / "kafka")


async def _create_topics(bootstrap: str, options: dict) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t.name, 1, 1) for t in (INTENTS, EXECUTIONS, ADMIN_COMMANDS, MARK_PRICES)])
    finally:
        await admin.close()


async def _send(bootstrap: str, user: kafka_auth.KafkaUser, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=10000,
        **user.client_options(),
    )
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


@pytest.mark.timeout(900)
def test_every_principal_logs_in_and_writes_only_what_local_mode_grants_it(applied):
    bootstrap, users = applied
    for principal, topic in (
        ("executor", EXECUTIONS),
        ("signal_router", INTENTS),
        ("operator", ADMIN_COMMANDS),
        ("prices", MARK_PRICES),
    ):
        asyncio.run(_send(bootstrap, users[principal], topic.name))
    for principal in ("executor", "reconciler", "ledger", "operator", "prices", "gateway"):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(_send(bootstrap, users[principal], INTENTS.name))
