from pydantic import BaseModel, ValidationError

from egis_common.broker import DeadLetters, PoisonMessage, subscriber_options
from faststream import AckPolicy


def test_transient_failures_are_retried_until_the_limit():
    dead_letters = DeadLetters(max_attempts=3)
    record = ("t", 0, 7)
    assert dead_letters.record_failure(record, RuntimeError("db down")) is None
    assert dead_letters.record_failure(record, RuntimeError("db down")) is None
    assert dead_letters.record_failure(record, RuntimeError("db down")) == 3


def test_counts_are_per_record_and_forgotten_after_success():
    dead_letters = DeadLetters(max_attempts=2)
    assert dead_letters.record_failure(("t", 0, 1), RuntimeError()) is None
    assert dead_letters.record_failure(("t", 0, 2), RuntimeError()) is None
    dead_letters.forget(("t", 0, 1))
    assert dead_letters.record_failure(("t", 0, 1), RuntimeError()) is None


def test_poison_goes_straight_to_dead_letters():
    class M(BaseModel):
        x: int

    try:
        M(x="not a number")
    except ValidationError as error:
        invalid = error
    dead_letters = DeadLetters(max_attempts=5)
    assert dead_letters.record_failure(("t", 0, 1), invalid) == 1
    assert dead_letters.record_failure(("t", 0, 2), PoisonMessage("bad")) == 1


def test_subscribers_never_auto_commit():
    options = subscriber_options("g")
    assert options["ack_policy"] is AckPolicy.NACK_ON_ERROR
    assert options["group_id"] == "g"
