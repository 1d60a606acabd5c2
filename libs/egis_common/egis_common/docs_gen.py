"""What a service consumes and produces, its README block and the AsyncAPI document, from data handed in.

Everything comes from code, so the documents cannot drift from it:

- consumes: the subscribers of a service's FastStream app (what its `main.create_app()` returns), and the
  topics its flow follows without a consumer group (`flow.FEEDS`: pairs of a topic and the handler of its
  records);
- produces: the messages its flow declares (`flow.PRODUCES`), or for a flow that declares none yet, the
  messages its code builds, which the caller finds and hands in;
- topics, keys, partitions and payload schemas: the registry (`egis_common.topics`) and the contracts.

This module takes the app and the flow module as arguments and imports no service, as the libraries'
boundary says. `tools/docs_gen.py` finds the services, builds their apps and writes the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic.json_schema import models_json_schema

from egis_common.contracts import Message
from egis_common.topics import ALL_TOPICS, Topic, topic_named

BEGIN, END = "<!-- messages:begin -->", "<!-- messages:end -->"
MESSAGES = {message.__name__: message for topic in ALL_TOPICS for message in topic.messages}


@dataclass(frozen=True)
class Consumer:
    topic: Topic
    group: str | None  # None: read whole from the beginning at every start, without a consumer group


@dataclass(frozen=True)
class ServiceMessages:
    service: str
    consumes: tuple[Consumer, ...]
    produces: tuple[type[Message], ...]  # in the registry's order


# --- what a service consumes and produces -----------------------------------------------


def describe(app: Any, flow: ModuleType, built: Iterable[type[Message]] | None = None) -> ServiceMessages:
    """A service's messages, from its FastStream app (what `create_app()` returns) and its flow module.

    A flow without `PRODUCES` needs `built`, the messages its code constructs: it produces those it does not
    consume (the ledger builds a fill again from a found fill it reads)."""
    service = flow.__name__.split(".")[0]
    consumes = tuple(sorted({*_subscribed(app), *_followed(flow)}, key=_consumer_order))
    declared = getattr(flow, "PRODUCES", None)
    if declared is None:
        if built is None:
            raise ValueError(f"{service}: its flow declares no PRODUCES, so describe() needs the messages it builds")
        consumed = {message for consumer in consumes for message in consumer.topic.messages}
        declared = set(built) - consumed
    return ServiceMessages(service, consumes, _in_registry_order(declared))


def _subscribed(app: Any) -> Iterable[Consumer]:
    for broker in app.brokers:
        for subscriber in broker.subscribers:
            for name in subscriber.topic_names:
                yield Consumer(topic_named(name), subscriber.group_id)


def _followed(flow: ModuleType) -> Iterable[Consumer]:
    for topic, _handler in getattr(flow, "FEEDS", ()):
        yield Consumer(topic, None)


def _consumer_order(consumer: Consumer) -> tuple[int, str]:
    return ALL_TOPICS.index(consumer.topic), consumer.group or ""


def _in_registry_order(messages: Iterable[type[Message]]) -> tuple[type[Message], ...]:
    wanted = set(messages)
    return tuple(message for message in MESSAGES.values() if message in wanted)


# --- the README block -----------------------------------------------------------------------


def readme_block(described: ServiceMessages, everyone: Sequence[ServiceMessages], *, command: str) -> str:
    """The block between the markers of a service's README; `command` is the one that writes it."""
    senders = _senders(everyone)
    lines = [
        BEGIN,
        f"<!-- generated from the code by `{command}`; edit the code, not this list -->",
        "",
        "**Consumes**",
        "",
        "| topic | messages on it (sent by) | consumer group |",
        "|---|---|---|",
    ]
    for consumer in described.consumes:
        messages_text = ", ".join(
            f"{m.__name__} ({', '.join(senders.get(m, ['outside the services']))})" for m in consumer.topic.messages
        )
        group = f"`{consumer.group}`" if consumer.group else "none: read whole from the beginning at every start"
        lines.append(f"| `{consumer.topic.name}` | {messages_text} | {group} |")
    lines += ["", "**Produces**", "", "| topic | messages | consumed by |", "|---|---|---|"]
    for topic, messages in _by_topic(described.produces):
        readers = sorted({s.service for s in everyone for consumer in s.consumes if consumer.topic == topic})
        readers_text = ", ".join(readers) or "outside the services"
        lines.append(f"| `{topic.name}` | {', '.join(m.__name__ for m in messages)} | {readers_text} |")
    return "\n".join([*lines, END])


def _senders(everyone: Sequence[ServiceMessages]) -> dict[type[Message], list[str]]:
    senders: dict[type[Message], list[str]] = {}
    for described in everyone:
        for message in described.produces:
            senders.setdefault(message, []).append(described.service)
    return senders


def _by_topic(messages: Sequence[type[Message]]) -> list[tuple[Topic, list[type[Message]]]]:
    grouped: dict[Topic, list[type[Message]]] = {}
    for message in messages:
        grouped.setdefault(_topic_of(message), []).append(message)
    return sorted(grouped.items(), key=lambda item: ALL_TOPICS.index(item[0]))


def _topic_of(message: type[Message]) -> Topic:
    return next(topic for topic in ALL_TOPICS if message in topic.messages)


def with_block(readme: str, block: str) -> str:
    """The README with its generated block replaced; one without a block gets it at its end."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if pattern.search(readme):
        return pattern.sub(lambda _: block, readme, count=1)
    return readme.rstrip("\n") + "\n\n" + block + "\n"


# --- AsyncAPI ------------------------------------------------------------------------------


def asyncapi_document(
    described: Sequence[ServiceMessages],
    *,
    title: str = "Egis",
    topics: Sequence[Topic] = ALL_TOPICS,
    command: str,
) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of `topics`: channels, messages with their pydantic payload schemas, and
    an operation per subscriber (receive) and per topic a service produces to (send), tagged by service;
    `command` is the one that writes it."""
    messages = [message for topic in topics for message in topic.messages]
    _, schemas = models_json_schema(
        [(m, "serialization") for m in messages], ref_template="#/components/schemas/{model}"
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": "1",
            "description": f"Generated from the topic registry and the services' wiring by `{command}`.",
        },
        "defaultContentType": "application/json",
        "channels": {channel_id(topic): _channel(topic) for topic in topics},
        "operations": dict(_operations(described, topics)),
        "components": {"schemas": schemas.get("$defs", {}), "messages": {m.__name__: _message(m) for m in messages}},
    }


def service_asyncapi(described: ServiceMessages, *, title: str, command: str) -> dict[str, Any]:
    """One service's part of the document: the topics it consumes or produces to, and its operations."""
    touched = {consumer.topic for consumer in described.consumes} | {_topic_of(m) for m in described.produces}
    return asyncapi_document([described], title=title, topics=[t for t in ALL_TOPICS if t in touched], command=command)


def channel_id(topic: Topic) -> str:
    """`egis.exchange.mark-prices.v1` -> `exchangeMarkPrices`."""
    words = re.split(r"[.\-]", topic.name.removeprefix("egis.").rsplit(".v", 1)[0])
    return words[0] + "".join(word.capitalize() for word in words[1:])


def _channel(topic: Topic) -> dict[str, Any]:
    policy = "compact" if topic.compacted else "delete"
    return {
        "address": topic.name,
        "description": f"Keyed by {topic.key}.",
        "messages": {m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in topic.messages},
        "bindings": {"kafka": {"partitions": topic.partitions, "topicConfiguration": {"cleanup.policy": [policy]}}},
    }


def _message(message: type[Message]) -> dict[str, Any]:
    return {
        "name": message.__name__,
        "payload": {"$ref": f"#/components/schemas/{message.__name__}"},
        "bindings": {"kafka": {"key": {"type": "string", "description": f"the message's {_topic_of(message).key}"}}},
    }


def _operations(described: Sequence[ServiceMessages], topics: Sequence[Topic]) -> Iterable[tuple[str, dict[str, Any]]]:
    for service in described:
        for consumer in service.consumes:
            if consumer.topic in topics:
                summary = (
                    f"Consumer group `{consumer.group}`."
                    if consumer.group
                    else "No consumer group: read whole from the beginning at every start, then followed."
                )
                yield (
                    f"{service.service}-receives-{channel_id(consumer.topic)}",
                    _operation(service.service, "receive", consumer.topic, consumer.topic.messages, summary),
                )
        for topic, messages in _by_topic(service.produces):
            if topic in topics:
                yield (
                    f"{service.service}-sends-{channel_id(topic)}",
                    _operation(service.service, "send", topic, messages, "Sent by the service."),
                )


def _operation(
    service: str, action: str, topic: Topic, messages: Iterable[type[Message]], summary: str
) -> dict[str, Any]:
    channel = channel_id(topic)
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "tags": [{"name": service}],
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m.__name__}"} for m in messages],
    }


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
