"""`python -m signal_router.documents`: write the service's API documents into `docs/`.

`docs/openapi.json` describes the webhook endpoint, `docs/asyncapi.json` the
topics. Both are generated from the code; a test fails when a committed copy
is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from signal_router.adapters.http import openapi_document
from signal_router.asyncapi import asyncapi_document
from signal_router.main import create_service
from signal_router.settings import RouterSettings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def documents() -> dict[str, dict[str, Any]]:
    """The documents of a service built with the default settings (nothing is started)."""
    service = create_service(RouterSettings(metrics_port=0, http_port=0), migrate=False)
    return {"openapi.json": openapi_document(), "asyncapi.json": asyncapi_document(service.app)}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    for name, document in documents().items():
        (DOCS / name).write_text(render(document))
        print(f"wrote {DOCS / name}")


if __name__ == "__main__":
    main()
