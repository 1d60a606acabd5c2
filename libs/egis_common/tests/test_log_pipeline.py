"""Every line a service writes is one JSON object: the libraries' standard-library records too, and a batch
record tried alone is logged with its own ids."""

import json
import subprocess
import sys
import textwrap
import uuid

PROGRAM = textwrap.dedent(
    """
    import asyncio, logging, uuid
    from types import SimpleNamespace
    from egis_common import contracts as c
    from egis_common.batches import consume_batch
    from egis_common.logs import configure_logging, get_logger
    from egis_common.topics import LEDGER_COMMANDS, encode

    configure_logging("ledger", "INFO")
    logging.getLogger("aiokafka.consumer.group_coordinator").warning("Heartbeat failed for group %s", "ledger")
    logging.getLogger("uvicorn.error").error("boom", exc_info=ValueError("bad"))

    class Letters:
        async def retry_transient(self, topic, call):
            return await call()
        async def transient(self, error):
            return False
        async def run(self, record, call):
            try:
                return await call()
            except Exception as error:
                get_logger("test").warning("record_failed", error=str(error))

    async def handle(messages):
        if len(messages) > 1:
            raise RuntimeError("the batch fails, so each record is tried alone")
        raise RuntimeError("this record fails")

    async def main():
        messages = [
            c.ApplyFoundFill(
                bot_id=uuid.UUID("{bot}"), intent_id=uuid.UUID("{intent}"), position_id=uuid.uuid4(),
                intent=c.IntentKind.OPEN, client_order_id="coid-1", exchange_order_id="9", executed_qty="1",
                avg_price="1", fee_usd="0", filled_at=c.utc_now(),
            ),
        ]
        records = [
            SimpleNamespace(value=encode(m), headers=[("x-egis-signal-id", b"{signal}")])
            for m in messages * 2
        ]
        await consume_batch(records, LEDGER_COMMANDS, Letters(), handle)

    asyncio.run(main())
    """
)


def test_library_records_and_isolated_batch_records_are_json_lines_with_their_ids():
    bot, intent, signal = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    program = PROGRAM.replace("{bot}", str(bot)).replace("{intent}", str(intent)).replace("{signal}", str(signal))
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # every line parses: nothing plain
    heartbeat = next(line for line in lines if line["event"].startswith("Heartbeat failed"))
    assert heartbeat["event"] == "Heartbeat failed for group ledger"
    assert heartbeat["service"] == "ledger" and heartbeat["level"] == "warning"
    assert heartbeat["logger"] == "aiokafka.consumer.group_coordinator"
    failure = next(line for line in lines if line["event"] == "boom")
    assert "ValueError: bad" in failure["exception"]
    failed = [line for line in lines if line["event"] == "record_failed"]
    assert len(failed) == 2
    for line in failed:
        assert line["signal_id"] == str(signal)
        assert line["intent_id"] == str(intent)
        assert line["bot_id"] == str(bot)
        assert line["client_order_id"] == "coid-1"
