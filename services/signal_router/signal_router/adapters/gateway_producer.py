"""The gateway's producer: acks=all, awaited, and no record outlives a 503.

The runtime's producer is idempotent, and aiokafka retries an idempotent
batch until it succeeds, even long after the HTTP caller was told 503; the
record would then appear once the broker is back. This producer is not
idempotent and gives up on a batch after `gateway_kafka_timeout_seconds`,
so a failed batch is dropped unsent. The price: a batch retried after a
lost acknowledgement may be written twice, and the router's dedup key
turns the copy into a `duplicate_signal` skip.
"""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher import DefaultPublisher

from egis_common.contracts import SignalJournaled, SignalReceived
from egis_common.kafka_login import broker_security
from egis_common.logs import correlation_headers, get_logger
from egis_common.topics import encode, key_for
from signal_router.journal_metrics import JOURNAL_DROPPED
from signal_router.reasons import Rejected, RejectReason
from signal_router.settings import RouterSettings

log = get_logger(__name__)


def make_gateway_broker(settings: RouterSettings) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"{settings.service_name}-gateway",
        security=broker_security(settings.gateway_login()),  # the gateway's own principal: signals only
        acks="all",
        enable_idempotence=False,
        request_timeout_ms=int(settings.gateway_kafka_timeout_seconds * 1000),
        retry_backoff_ms=50,
        linger_ms=0,
        logger=get_logger("faststream"),
    )


class BoundedPublish:
    """Publish one signal and wait for acks=all, for at most the deadline."""

    def __init__(self, publisher: DefaultPublisher, settings: RouterSettings) -> None:
        self.publisher = publisher
        self.deadline_seconds = settings.gateway_publish_deadline_seconds

    async def __call__(self, signal: SignalReceived) -> None:
        send = self.publisher.publish(
            encode(signal),
            key=key_for(signal),
            headers={"content-type": "application/json", **correlation_headers(signal)},
        )
        try:
            await asyncio.wait_for(send, self.deadline_seconds)
        except Exception as error:  # any failure to get the ack is the same answer: not taken
            log.warning("signal_not_published", signal_id=str(signal.signal_id), error=repr(error)[:300])
            raise Rejected(RejectReason.BROKER_UNAVAILABLE, "Kafka did not take the signal; retry") from None


class BackgroundJournal:
    """Hand a journal entry to Kafka and return at once: a webhook's answer never waits for its journal.

    At most `max_in_flight` entries wait for their ack; past that (a flood of bad posts, or Kafka away)
    an entry is dropped and counted, so the journal can never hold memory or the event loop hostage.
    """

    def __init__(self, publisher: DefaultPublisher, settings: RouterSettings, max_in_flight: int = 1_000) -> None:
        self.publisher = publisher
        self.deadline_seconds = settings.gateway_publish_deadline_seconds
        self.max_in_flight = max_in_flight
        self.in_flight: set[asyncio.Task] = set()

    def __call__(self, entry: SignalJournaled) -> None:
        if len(self.in_flight) >= self.max_in_flight:
            JOURNAL_DROPPED.inc()
            return
        task = asyncio.get_running_loop().create_task(self._send(entry))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _send(self, entry: SignalJournaled) -> None:
        send = self.publisher.publish(encode(entry), key=key_for(entry), headers={"content-type": "application/json"})
        try:
            await asyncio.wait_for(send, self.deadline_seconds)
        except Exception as error:  # the answer went out already; the entry is lost and counted
            JOURNAL_DROPPED.inc()
            log.warning("journal_entry_not_published", outcome=entry.outcome.value, error=repr(error)[:300])
