"""`python -m egis_common.docs_gen [--check]`: what each service consumes and produces, and the AsyncAPI document.

Everything comes from code, so the documents cannot drift from it:

- consumes: the subscribers a service's composition root wires (`<service>.main.create_app()`, read
  through its FastStream brokers), and the topics its flow follows without a consumer group
  (`flow.FEEDS`: pairs of a topic and the handler of its records);
- produces: the messages its flow declares (`flow.PRODUCES`). For a flow that declares none yet, the
  messages its code constructs (`constructed_messages`) that it does not consume; a test checks every
  declaration against the same scan;
- topics, keys, partitions and payload schemas: the registry (`egis_common.topics`) and the contracts.

It rewrites the block between `<!-- messages:begin -->` and `<!-- messages:end -->` in every
`services/<name>/README.md` and writes `docs/asyncapi.json`. `--check` changes nothing and fails when a
file differs from what the code generates. It imports the services by name and finds them under
`services/`: egis_common itself depends on none of them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from pydantic.json_schema import models_json_schema

from egis_common.contracts import Message
from egis_common.topics import ALL_TOPICS, Topic, topic_named

ROOT = Path(__file__).resolve().parents[3]
COMMAND = "uv run --frozen python -m egis_common.docs_gen"
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


def describe(app: Any, flow: ModuleType) -> ServiceMessages:
    """A service's messages, from its FastStream app (what `create_app()` returns) and its flow module."""
    service = flow.__name__.split(".")[0]
    consumes = tuple(sorted({*_subscribed(app), *_followed(flow)}, key=_consumer_order))
    declared = getattr(flow, "PRODUCES", None)
    if declared is None:
        consumed = {message for consumer in consumes for message in consumer.topic.messages}
        declared = constructed_messages(service) - consumed
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


def constructed_messages(service: str) -> set[type[Message]]:
    """Every registered message class the service's code builds: its package and the workspace libraries
    it imports (a venue library builds the exchange facts), egis_common left out."""
    trees = [ast.parse(path.read_text(), str(path)) for path in _sources(service)]
    names = {name for tree in trees for name in _built_names(tree)}
    return {MESSAGES[name] for name in names if name in MESSAGES}


def _sources(service: str) -> list[Path]:
    package = cast(Path, _package_dir(service))  # the package of a flow module already imported: it is found
    own = sorted(package.rglob("*.py"))
    libraries = {root for path in own for root in _imported_roots(ast.parse(path.read_text()))}
    library_dirs = [
        d
        for root in sorted(libraries - {"egis_common", service})
        if (d := _package_dir(root)) is not None and (ROOT / "libs") in d.parents
    ]
    return own + [path for d in library_dirs for path in sorted(d.rglob("*.py"))]


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def _imported_roots(tree: ast.AST) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def _built_names(tree: ast.AST) -> Iterable[str]:
    """`Name(...)`, `c.Name(...)` and `Name.model_validate(...)`-style calls."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr.startswith("model_"):
            func = func.value
        if isinstance(func, ast.Name):
            yield func.id
        elif isinstance(func, ast.Attribute):
            yield func.attr


def service_names() -> list[str]:
    """Every service of the workspace: a directory under services/ holding a package with a flow.py."""
    return sorted(d.name for d in (ROOT / "services").iterdir() if (d / d.name / "flow.py").is_file())


def describe_service(service: str) -> ServiceMessages:
    """Builds the service's app as `python -m <service>.main` would, without starting anything."""
    main = importlib.import_module(f"{service}.main")
    return describe(main.create_app(), importlib.import_module(f"{service}.flow"))


# --- the README block -----------------------------------------------------------------------


def readme_block(described: ServiceMessages, everyone: Sequence[ServiceMessages]) -> str:
    senders = _senders(everyone)
    lines = [
        BEGIN,
        f"<!-- generated from the code by `{COMMAND}`; edit the code, not this list -->",
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
    command: str = COMMAND,
) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of `topics`: channels, messages with their pydantic payload schemas, and
    an operation per subscriber (receive) and per topic a service produces to (send), tagged by service."""
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


# --- the command --------------------------------------------------------------------------


def generated_files(described: Sequence[ServiceMessages]) -> dict[Path, str]:
    """Every file the generator owns, with the content the code gives it."""
    files = {ROOT / "docs" / "asyncapi.json": render_json(asyncapi_document(described))}
    for service in described:
        readme = ROOT / "services" / service.service / "README.md"
        current = readme.read_text() if readme.exists() else f"# {service.service}\n"
        files[readme] = with_block(current, readme_block(service, described))
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m egis_common.docs_gen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    files = generated_files([describe_service(service) for service in service_names()])
    stale = {path: text for path, text in files.items() if not path.exists() or path.read_text() != text}
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}; run `{COMMAND}`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in stale.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
