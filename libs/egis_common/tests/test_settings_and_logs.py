import io
import json
import uuid

import pytest
import structlog
from pydantic import ValidationError

from egis_common import logs
from egis_common.settings import EgisSettings


class ProbeSettings(EgisSettings):
    service_name: str = "probe"
    db_schema: str = "probe"
    metrics_port: int = 9999


def test_settings_read_the_egis_prefix(monkeypatch):
    monkeypatch.setenv("EGIS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("EGIS_CONSUMER_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "ignored:1")
    settings = ProbeSettings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert settings.consumer_max_attempts == 3


def test_settings_validate(monkeypatch):
    monkeypatch.setenv("EGIS_CONSUMER_MAX_ATTEMPTS", "0")
    with pytest.raises(ValidationError):
        ProbeSettings()


def test_secrets_never_show_in_settings_output(monkeypatch):
    monkeypatch.setenv("EGIS_DATABASE_URL", "postgresql+asyncpg://u:hunter2@127.0.0.1:1/db")
    settings = ProbeSettings()
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    assert "hunter2" in settings.database_url.get_secret_value()


@pytest.fixture
def captured_logs():
    out = io.StringIO()
    logs.configure_logging("probe", "DEBUG")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(out), cache_logger_on_first_use=False)
    yield out
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_log_lines_are_json_with_correlation_and_no_secrets(captured_logs):
    bot_id = uuid.uuid4()
    with structlog.contextvars.bound_contextvars(bot_id=str(bot_id), intent_id="i-1"):
        logs.get_logger("t").info("reserved", webhook_secret="s3cret", api_key="k", size_usd="10")
    line = json.loads(captured_logs.getvalue().strip().splitlines()[-1])
    assert line["event"] == "reserved"
    assert line["bot_id"] == str(bot_id) and line["intent_id"] == "i-1"
    assert line["webhook_secret"] == "***" and line["api_key"] == "***"
    assert line["size_usd"] == "10"
    assert "s3cret" not in captured_logs.getvalue()


def test_correlation_ids_travel_through_headers():
    class Msg:
        signal_id = uuid.UUID(int=1)
        bot_id = uuid.UUID(int=2)

    with structlog.contextvars.bound_contextvars(intent_id="i-9"):
        headers = logs.correlation_headers(Msg())
    assert headers == {
        "x-egis-signal-id": str(uuid.UUID(int=1)),
        "x-egis-intent-id": "i-9",
        "x-egis-bot-id": str(uuid.UUID(int=2)),
    }
    encoded = {k: v.encode() for k, v in headers.items()}
    assert logs.correlation_from_headers(encoded) == {
        "signal_id": str(uuid.UUID(int=1)),
        "intent_id": "i-9",
        "bot_id": str(uuid.UUID(int=2)),
    }
