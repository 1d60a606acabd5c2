"""The services' message lists and the AsyncAPI document are generated from code (tools/docs_gen.py, on
egis_common.docs_gen), and committed current."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from egis_common import contracts as c
from egis_common import docs_gen
from egis_common.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "docs_gen.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("egis_docs_gen_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_readme_lists_and_asyncapi_document_are_what_the_code_generates():
    checked = subprocess.run(
        [sys.executable, str(TOOL), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("service", ["ledger", "signal_router"])
def test_a_declared_production_is_what_the_code_builds(service):
    """Every declared message is built by the service's code, and every message it builds is declared
    or one it consumes (built again from its input, as the ledger builds a fill from a found fill)."""
    tool = load_tool()
    described = tool.describe_service(service)
    consumed = {message for consumer in described.consumes for message in consumer.topic.messages}
    built = tool.constructed_messages(service)
    declared = set(described.produces)
    assert declared - built == set(), "declared in flow.PRODUCES but never built"
    assert built - declared - consumed == set(), "built but not declared in flow.PRODUCES"


def test_every_service_lists_its_messages_between_the_markers():
    for service in load_tool().service_names():
        readme = (ROOT / "services" / service / "README.md").read_text()
        assert readme.count(docs_gen.BEGIN) == readme.count(docs_gen.END) == 1, service


def test_a_block_is_replaced_in_place_and_added_where_there_is_none():
    block = f"{docs_gen.BEGIN}\nnew\n{docs_gen.END}"
    assert docs_gen.with_block(f"# a\n{docs_gen.BEGIN}\nold\n{docs_gen.END}\n## b\n", block) == f"# a\n{block}\n## b\n"
    assert docs_gen.with_block("# a\n", block) == f"# a\n\n{block}\n"


def test_a_flow_without_declared_productions_needs_the_messages_its_code_builds():
    flow = types.ModuleType("nameless.flow")
    app = types.SimpleNamespace(brokers=[])
    with pytest.raises(ValueError, match="nameless"):
        docs_gen.describe(app, flow)
    assert docs_gen.describe(app, flow, built=[c.OrderFilled]).produces == (c.OrderFilled,)


def test_the_asyncapi_document_covers_every_topic_and_its_references_resolve():
    document = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert {channel["address"] for channel in document["channels"].values()} == {t.name for t in ALL_TOPICS}
    operated = {operation["channel"]["$ref"].rsplit("/", 1)[1] for operation in document["operations"].values()}
    assert operated == set(document["channels"]), "a topic no service sends or receives"
    for reference in _references(document):
        node = document
        for part in reference.removeprefix("#/").split("/"):
            node = node[part]


def _references(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)
