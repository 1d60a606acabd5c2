"""The local Kafka with authentication and ACLs on: who may connect, write and read, proven on a real broker.

One secure broker for the module; each service logs in as its own principal with the grants of
`egis_common.access`, and nothing is allowed without an ACL.
"""

import asyncio
import shutil
import stat

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ClusterAuthorizationFailedError, KafkaError, TopicAuthorizationFailedError
from faststream.kafka import KafkaBroker

from egis_common import access
from egis_common import contracts as c
from egis_common.kafka_login import broker_security, client_options
from egis_common.topics import EXECUTIONS, INTENTS, LEDGER_EVENTS, encode
from egis_localinfra import kafka_auth
from egis_localinfra.kafka import admin_client_options, provision_access, start_kafka, stop_kafka

pytestmark = pytest.mark.skipif(not (shutil.which("java") and shutil.which("mvn")), reason="needs java and mvn on PATH")
TOPICS = (INTENTS, LEDGER_EVENTS, EXECUTIONS)


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("secure-kafka")
    info = start_kafka(state_dir, secure=True)
    users = {name: kafka_auth.KafkaUser(name, kafka_auth.new_password()) for name in (*access.SERVICES, "team-risk")}
    grants = [binding for name in access.SERVICES for binding in access.bindings(access.GRANTS[name])]
    grants += access.bindings(access.team("risk"))
    asyncio.run(_create_topics(info.bootstrap, admin_client_options(state_dir)))
    summary = provision_access(state_dir, info.bootstrap, users=users.values(), grants=grants)
    assert summary.endswith("failures 0"), summary
    yield info.bootstrap, users, state_dir
    stop_kafka(state_dir)


async def _create_topics(bootstrap: str, options: dict) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic.name, 1, 1) for topic in TOPICS])
    finally:
        await admin.close()


def _intent() -> c.OrderIntent:
    return c.OrderIntent.model_validate(
        {
            "signal_id": "00000000-0000-4000-8000-000000000001",
            "intent_id": "00000000-0000-4000-8000-000000000002",
            "bot_id": "00000000-0000-4000-8000-000000000003",
            "intent": "open",
            "symbol": "BTCUSDT",
            "side": "long",
            "requested_size_usd": "1000",
            "exchange": "paper",
            "exchange_account": "victim",
        }
    )


async def _send(bootstrap: str, user: kafka_auth.KafkaUser | None, topic: str, value: bytes) -> None:
    options = user.client_options() if user else {}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=10000, **options
    )
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, user: kafka_auth.KafkaUser, topic: str, group: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **user.client_options(),
    )
    await consumer.start()
    try:
        consumer.subscribe([topic])
        batch = await consumer.getmany(timeout_ms=15000)
        values = [record.value for records in batch.values() for record in records]
        await consumer.commit()  # the group's offsets: READ on the group is what allows it
        return values
    finally:
        await consumer.stop()


async def _fetch(bootstrap: str, user: kafka_auth.KafkaUser, topic: str) -> list[bytes]:
    """A partition read directly, with no group: only the topic's own ACL decides."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=10000, **user.client_options()
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        batch = await consumer.getmany(partition, timeout_ms=10000)
        return [record.value for record in batch.get(partition, [])]
    finally:
        await consumer.stop()


def test_secrets_are_owner_only(secure_kafka):
    _, _, state_dir = secure_kafka
    for name in (kafka_auth.ADMIN_FILE, "server.properties"):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600, name


def test_an_unauthenticated_client_cannot_connect(secure_kafka):
    bootstrap, _, _ = secure_kafka
    with pytest.raises(KafkaError):
        asyncio.run(asyncio.wait_for(_send(bootstrap, None, INTENTS.name, b"{}"), timeout=30))


def test_a_wrong_password_is_refused(secure_kafka):
    bootstrap, users, _ = secure_kafka
    impostor = kafka_auth.KafkaUser("signal_router", users["signal_router"].password + "x")
    with pytest.raises(KafkaError):
        asyncio.run(asyncio.wait_for(_send(bootstrap, impostor, INTENTS.name, encode(_intent())), timeout=30))


@pytest.mark.parametrize("forger", ["executor", "ledger", "reconciler"])
def test_an_intent_forged_with_another_services_identity_is_refused(secure_kafka, forger):
    bootstrap, users, _ = secure_kafka
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_send(bootstrap, users[forger], INTENTS.name, encode(_intent())))


def test_each_service_writes_its_own_topics_only(secure_kafka):
    bootstrap, users, _ = secure_kafka
    asyncio.run(_send(bootstrap, users["signal_router"], INTENTS.name, encode(_intent())))
    asyncio.run(_send(bootstrap, users["executor"], EXECUTIONS.name, b"{}"))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_send(bootstrap, users["signal_router"], EXECUTIONS.name, b"{}"))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_send(bootstrap, users["reconciler"], LEDGER_EVENTS.name, b"{}"))


def test_a_team_reads_public_events_in_its_own_groups_and_writes_nothing(secure_kafka):
    bootstrap, users, _ = secure_kafka
    asyncio.run(_send(bootstrap, users["ledger"], LEDGER_EVENTS.name, b'{"event": 1}'))
    team = users["team-risk"]
    assert b'{"event": 1}' in asyncio.run(_read_all(bootstrap, team, LEDGER_EVENTS.name, "team-risk.audit"))
    with pytest.raises(KafkaError):  # a group that is not its own
        asyncio.run(_read_all(bootstrap, team, LEDGER_EVENTS.name, "ledger"))
    # A topic that is not public: the broker hands the team nothing of it (aiokafka logs "not authorized"),
    # while the executor, which the design lets read intents, gets the record.
    asyncio.run(_send(bootstrap, users["signal_router"], INTENTS.name, encode(_intent())))
    assert asyncio.run(_fetch(bootstrap, users["executor"], INTENTS.name))
    assert asyncio.run(_fetch(bootstrap, team, INTENTS.name)) == []
    # It may write nowhere, so the broker refuses it even a producer id.
    with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
        asyncio.run(_send(bootstrap, team, LEDGER_EVENTS.name, b"{}"))


def test_a_service_broker_logs_in_with_its_settings_and_gets_only_its_grants(secure_kafka):
    """The same FastStream broker options every service uses (egis_common.kafka_login), against the real ACLs."""
    bootstrap, users, _ = secure_kafka

    async def publish(user: kafka_auth.KafkaUser, topic: str) -> None:
        broker = KafkaBroker(
            bootstrap,
            security=broker_security(user.login()),
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=10000,
        )
        await broker.start()
        try:
            await broker.publish(b"{}", topic, key=b"k")
        finally:
            await broker.stop()

    asyncio.run(publish(users["executor"], EXECUTIONS.name))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(publish(users["executor"], INTENTS.name))
    assert client_options(users["ledger"].login())["sasl_plain_username"] == "ledger"
