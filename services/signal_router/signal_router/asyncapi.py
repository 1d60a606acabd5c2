"""The AsyncAPI 3.0 document of the topics this service reads and writes, built from the registry.

Served at `GET /asyncapi.json` and kept in `docs/asyncapi.json` (`python -m signal_router.documents`).
Payload schemas come from the pydantic contracts, so the document cannot
drift from the code.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from egis_common.topics import BOTS, INTENTS, SIGNALS_RECEIVED, SIGNALS_SKIPPED, Topic

CHANNELS = {"signalsReceived": SIGNALS_RECEIVED, "bots": BOTS, "intents": INTENTS, "signalsSkipped": SIGNALS_SKIPPED}
OPERATIONS = (  # (operation id, action, channel, summary)
    ("acceptSignal", "send", "signalsReceived",
     "The webhook gateway, after validating and authenticating a POST /v1/signals. Published with "
     "acks=all and awaited before the 202: the one message not sent through the outbox."),
    ("routeSignal", "receive", "signalsReceived",
     "The router, consumer group `signal_router`: drops duplicates by dedup key, resolves the bot."),
    ("followBots", "receive", "bots",
     "No consumer group: read from the beginning at every start, then followed. A tombstone "
     "(null value) removes a bot; `deleted` or `paused` stop its routing at once."),
    ("publishIntent", "send", "intents", "One order intent per routed signal, through the outbox."),
    ("publishSkip", "send", "signalsSkipped", "One skip, with its reason, per signal not routed."),
)


def asyncapi_document() -> dict[str, Any]:
    messages = [message for topic in CHANNELS.values() for message in topic.messages]
    _, schemas = models_json_schema(
        [(message, "serialization") for message in messages], ref_template="#/components/schemas/{model}"
    )
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Egis signal_router", "version": "1",
                 "description": "Webhook signals in; order intents and skips out. See flow.py."},
        "defaultContentType": "application/json",
        "channels": {name: _channel(topic) for name, topic in CHANNELS.items()},
        "operations": {
            op_id: {"action": action, "channel": {"$ref": f"#/channels/{channel}"}, "summary": summary,
                    "messages": [{"$ref": f"#/channels/{channel}/messages/{m.__name__}"}
                                 for m in CHANNELS[channel].messages]}
            for op_id, action, channel, summary in OPERATIONS
        },
        "components": {
            "schemas": schemas["$defs"],
            "messages": {m.__name__: _message(m.__name__, topic) for topic in CHANNELS.values()
                         for m in topic.messages},
        },
    }


def _channel(topic: Topic) -> dict[str, Any]:
    policy = "compact" if topic.compacted else "delete"
    return {
        "address": topic.name,
        "messages": {m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in topic.messages},
        "bindings": {"kafka": {"partitions": topic.partitions, "topicConfiguration": {"cleanup.policy": [policy]}}},
    }


def _message(name: str, topic: Topic) -> dict[str, Any]:
    return {
        "name": name,
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {"kafka": {"key": {"type": "string", "description": f"the message's {topic.key}"}}},
    }
