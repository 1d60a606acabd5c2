"""The AsyncAPI 3.0 document of the topics this service reads and writes.

Its part of the system's document (`docs/asyncapi.json` at the repository's root), built by the
same generator (`egis_common.docs_gen`) from the same data: the topic registry, the subscribers
and feeds this process wires, and `flow.PRODUCES`. Payload schemas come from the pydantic
contracts, so the document cannot drift from the code. Served at `GET /asyncapi.json` and kept
in `docs/asyncapi.json` (`python -m signal_router.documents`).
"""

from __future__ import annotations

from typing import Any

from faststream import FastStream

from egis_common import docs_gen
from signal_router import flow


def asyncapi_document(app: FastStream) -> dict[str, Any]:
    return docs_gen.service_asyncapi(
        docs_gen.describe(app, flow),
        title="Egis signal_router",
        command="uv run --frozen python -m signal_router.documents",
    )
