"""`python -m egis_common.setup`: migrate every service's schema and create every topic.

Run once before the services start (the compose `init` job, `egis-local up`);
both steps are idempotent.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from egis_common.kafka_admin import ensure_topics
from egis_common.migrations import SERVICE_SCHEMAS, upgrade


def prepare_system(database_url: str, kafka_bootstrap_servers: str, **kafka_options: Any) -> list[str]:
    """Returns the names of the topics it created. `kafka_options`: a Kafka login allowed to create topics."""
    for service in SERVICE_SCHEMAS:
        upgrade(service, database_url)
    return asyncio.run(ensure_topics(kafka_bootstrap_servers, **kafka_options))


def main() -> None:
    url = os.environ.get("EGIS_DATABASE_URL")
    bootstrap = os.environ.get("EGIS_KAFKA_BOOTSTRAP_SERVERS")
    if not (url and bootstrap):
        sys.exit("EGIS_DATABASE_URL and EGIS_KAFKA_BOOTSTRAP_SERVERS must be set")
    created = prepare_system(url, bootstrap)
    print(f"schemas migrated: {', '.join(SERVICE_SCHEMAS)}; topics created: {len(created)}")


if __name__ == "__main__":
    main()
