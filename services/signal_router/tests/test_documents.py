"""The committed API documents match the code, and every reference in them resolves."""

from __future__ import annotations

from signal_router.documents import DOCS, documents, render


def test_the_committed_documents_are_current():
    for name, document in documents().items():
        assert (DOCS / name).read_text() == render(document), f"run `python -m signal_router.documents` ({name})"


def test_the_asyncapi_document_covers_every_topic_of_the_flow_and_its_references_resolve():
    document = documents()["asyncapi.json"]
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "egis.signals.received.v1",
        "egis.ledger.bots.v1",
        "egis.router.intents.v1",
        "egis.signals.skipped.v1",
        "egis.router.signal-journal.v1",
    }
    for reference in _references(document):
        node = document
        for part in reference.removeprefix("#/").split("/"):
            node = node[part]


def test_the_openapi_document_declares_every_refusal():
    operation = documents()["openapi.json"]["paths"]["/v1/signals"]["post"]
    assert set(operation["responses"]) == {"200", "202", "400", "401", "413", "415", "422", "503"}
    assert operation["requestBody"]["content"]["application/json"]["schema"]["additionalProperties"] is False


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
