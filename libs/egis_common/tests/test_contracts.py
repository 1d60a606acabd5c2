import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from egis_common import contracts as c
from egis_common.topics import (
    ALL_TOPICS,
    BOTS,
    EXECUTIONS,
    LEDGER_EVENTS,
    encode,
    key_for,
    topic_for,
    topic_named,
)


def a_fill(**overrides):
    fields = dict(
        intent_id=uuid.uuid4(),
        bot_id=uuid.uuid4(),
        position_id=uuid.uuid4(),
        intent="open",
        symbol="ETHUSDT",
        side="long",
        client_order_id="ego-" + "0" * 32,
        exchange_order_id="42",
        executed_qty="0.003",
        avg_price="2942.67",
        fee_usd="0.0035",
        filled_at=datetime.now(UTC),
    )
    return c.OrderFilled(**{**fields, **overrides})


def test_round_trip_through_the_topic_keeps_decimals_exact():
    fill = a_fill()
    decoded = EXECUTIONS.decode(encode(fill))
    assert decoded == fill
    assert decoded.executed_qty * decoded.avg_price == Decimal("8.82801")
    assert json.loads(encode(fill))["avg_price"] == "2942.67"


def test_messages_are_frozen_and_ignore_fields_they_do_not_know():
    fill = a_fill()
    with pytest.raises(ValidationError):
        fill.symbol = "BTCUSDT"
    payload = json.loads(encode(fill)) | {"surprise": 1}
    assert EXECUTIONS.decode(json.dumps(payload)) == fill


def test_every_message_has_id_time_and_version():
    fill = a_fill()
    assert fill.schema_version == 1
    assert isinstance(fill.message_id, uuid.UUID)
    assert fill.occurred_at.tzinfo is not None
    with pytest.raises(ValidationError):
        a_fill(filled_at=datetime(2026, 1, 1))  # naive times are refused


def test_discriminator_picks_the_right_class_and_refuses_foreign_types():
    rejected = c.PreflightRejected(intent_id=uuid.uuid4(), bot_id=uuid.uuid4(), reason="insufficient_budget")
    assert isinstance(LEDGER_EVENTS.decode(encode(rejected)), c.PreflightRejected)
    with pytest.raises(ValidationError):
        LEDGER_EVENTS.decode(encode(a_fill()))


def test_float_money_on_the_wire_is_refused():
    payload = json.loads(encode(a_fill())) | {"executed_qty": 0.003}
    with pytest.raises(ValidationError, match="executed_qty"):
        EXECUTIONS.decode(json.dumps(payload))


def test_registry_names_every_topic_once_with_keys_that_exist():
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    for topic in ALL_TOPICS:
        assert topic.name.startswith("egis.") and topic.name.endswith(".v1")
        assert topic.partitions >= 1
        assert topic_named(topic.name) is topic
        for message in topic.messages:
            assert topic.key in message.model_fields, (topic.name, message.__name__)
            assert topic_for.__name__  # registry lookups below cover the mapping


def test_every_message_class_travels_on_exactly_one_topic():
    classes = [m for t in ALL_TOPICS for m in t.messages]
    assert len(classes) == len(set(classes))
    message_classes = {
        obj
        for obj in vars(c).values()
        if isinstance(obj, type) and issubclass(obj, c.Message) and "type" in obj.model_fields
    }
    assert message_classes == set(classes)


def test_bot_messages_are_keyed_by_bot_id():
    fill = a_fill()
    assert topic_for(fill) is EXECUTIONS
    assert key_for(fill) == str(fill.bot_id).encode()


def test_a_bot_snapshot_from_before_the_stop_percentages_still_parses_and_new_ones_are_bounded():
    old = {
        "type": "BotSnapshot",
        "schema_version": 1,
        "message_id": str(uuid.uuid4()),
        "occurred_at": "2026-01-01T00:00:00Z",
        "bot_id": str(uuid.uuid4()),
        "version": 3,
        "owner_id": str(uuid.uuid4()),
        "name": "old",
        "strategy": "signal_hook",
        "signal_key": "k",
        "webhook_secret_hash": "h",
        "exchange": "paper",
        "exchange_account": "a",
        "initial_budget_usd": "100",
        "default_order_size_usd": "10",
        "paused": False,
        "deleted": False,
    }
    snapshot = BOTS.decode(json.dumps(old))
    assert (snapshot.take_profit_pct, snapshot.stop_loss_pct) == (None, None)
    new = BOTS.decode(json.dumps({**old, "take_profit_pct": "2.5", "stop_loss_pct": "99.99"}))
    assert (new.take_profit_pct, new.stop_loss_pct) == (Decimal("2.5"), Decimal("99.99"))
    for bad in (
        {"take_profit_pct": "0"},
        {"stop_loss_pct": "-1"},
        {"stop_loss_pct": "100"},
        {"take_profit_pct": "1000.1"},
        {"take_profit_pct": 2},
    ):
        with pytest.raises(ValidationError):
            BOTS.decode(json.dumps({**old, **bad}))


# One message of every contract as the first v1 producers could send it: only the fields v1 required then.
V1_SAMPLES = json.loads((Path(__file__).parent / "contracts" / "v1_required_fields.json").read_text())
TOPIC_OF = {m.__name__: t for t in ALL_TOPICS for m in t.messages}


def test_every_contract_has_a_v1_sample():
    assert set(V1_SAMPLES) == set(TOPIC_OF), "a new contract gets its sample; an old sample is never edited"


@pytest.mark.parametrize("name", sorted(V1_SAMPLES))
def test_a_reader_of_today_reads_what_the_first_v1_producers_sent(name):
    """A field added to a v1 message since must be optional, or this old message stops parsing."""
    sample = V1_SAMPLES[name]
    message = TOPIC_OF[name].decode(json.dumps(sample))
    assert type(message).__name__ == name
    again = json.loads(encode(message))
    assert {key: again[key] for key in sample} == sample, "nothing the old message said is lost or changed"


@pytest.mark.parametrize("name", sorted(V1_SAMPLES))
def test_a_reader_of_today_reads_a_message_from_a_later_producer(name):
    """A producer one release ahead adds fields (and says so in schema_version): today's reader takes the rest."""
    sample = V1_SAMPLES[name]
    newer = {**sample, "schema_version": 2, "added_later": "x", "another_added_later": {"nested": [1, "2"]}}
    read = TOPIC_OF[name].decode(json.dumps(newer))
    assert read.model_dump(exclude={"schema_version"}) == TOPIC_OF[name].decode(json.dumps(sample)).model_dump(
        exclude={"schema_version"}
    )
    assert read.schema_version == 2


def test_known_fields_stay_strict_in_a_message_from_a_later_producer():
    newer = {**V1_SAMPLES["MarkPrice"], "schema_version": 2, "added_later": 1}
    for bad in ({"price": 0.1}, {"price": "-1"}, {"occurred_at": "2026-12-04T12:00:00"}, {"schema_version": 0}):
        with pytest.raises(ValidationError):
            TOPIC_OF["MarkPrice"].decode(json.dumps({**newer, **bad}))


@pytest.mark.parametrize("name", ["OrderIntent", "ReserveBudget"])
def test_an_open_needs_a_side_and_only_a_close_may_leave_it_out(name):
    topic, an_open = TOPIC_OF[name], V1_SAMPLES[name]
    assert an_open["intent"] == "open" and an_open["side"] == "long"
    with pytest.raises(ValidationError, match="an open needs a side"):
        topic.decode(json.dumps({**an_open, "side": None}))
    with pytest.raises(ValidationError, match="an open needs a side"):
        topic.decode(json.dumps({**an_open, "side": None, "schema_version": 2, "added_later": "x"}))
    a_close = {**an_open, "intent": "close", "side": None}
    assert topic.decode(json.dumps(a_close)).side is None
    assert topic.decode(json.dumps({**a_close, "schema_version": 2, "added_later": "x"})).side is None
