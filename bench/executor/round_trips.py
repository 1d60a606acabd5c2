"""Benchmark: the Postgres statements and transactions each service runs per intent.

Runs the pipeline (Kafka, durable Postgres, the ledger and the executor as their own
processes, paper venue) and sends intents at a low fixed rate, so that every batch
holds one record: the most round trips an intent can cost. The server logs every
statement for that run only (`log_statement = all`, `%a` = the service's
application_name); the script counts them per service, per intent, and by kind.

    uv run python bench/executor/round_trips.py [--intents 100] [--rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import sys
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
from load import Load  # noqa: E402
from system import create_bots, infrastructure, service, set_mark_prices  # noqa: E402
from webhook import publish_bots  # noqa: E402

BOTS = 100
# A logged statement: "@@ <application_name> LOG:  statement: <sql>" or "... execute <name>: <sql>".
LOGGED = re.compile(r"@@ (\S*) LOG:  (?:statement|execute [^:]*): ?(.*)")


async def run(system, bots, services, intents: int, rate: float) -> dict:
    load = Load(system.bootstrap, bots, [*services, *system.infra], lambda r: f"B{r:03d}USDT", "PositionOpened", False)
    await load.start()
    admin = await asyncpg.connect(system.dsn)
    try:
        await load.run(load.planned(len(bots)), None)  # warm-up: group joins, pools, caches
        await asyncio.sleep(2)
        await admin.execute("ALTER SYSTEM SET log_line_prefix = '@@ %a '")
        await admin.execute("ALTER SYSTEM SET log_statement = 'all'")
        await admin.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(1)
        result = await load.run(load.planned(intents), rate)
        await asyncio.sleep(2)  # the relays' last publishes
        await admin.execute("ALTER SYSTEM RESET log_statement")
        await admin.execute("SELECT pg_reload_conf()")
        return result
    finally:
        await admin.close()
        await load.stop()


def count(log: Path, services: list[str], intents: int) -> dict:
    kinds: dict[str, collections.Counter] = {name: collections.Counter() for name in services}
    for line in log.read_text(errors="replace").splitlines():
        if (logged := LOGGED.match(line)) and logged[1] in kinds:
            words = logged[2].split()
            kinds[logged[1]][words[0].rstrip(";").upper() if words else "(continued)"] += 1
    return {
        name: {
            "statements_per_intent": round(sum(k.values()) / intents, 2),
            "transactions_per_intent": round(k["BEGIN"] / intents, 2),
            "by_kind_per_intent": {kind: round(n / intents, 2) for kind, n in sorted(k.items())},
        }
        for name, k in kinds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intents", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10)
    args = parser.parse_args()
    with infrastructure() as system:
        bots = asyncio.run(create_bots(system.dsn, BOTS))
        asyncio.run(publish_bots(system.bootstrap, bots))  # the executor takes each bot's account from the topic
        rounds = 2 + args.intents // BOTS
        asyncio.run(set_mark_prices(system.dsn, [f"B{i:03d}USDT" for i in range(rounds)], Decimal("2.5")))
        with ExitStack() as running:
            services = [running.enter_context(service(system, name)) for name in ("ledger", "executor")]
            result = asyncio.run(run(system, bots, services, args.intents, args.rate))
        print(json.dumps(result), flush=True)
        log = next(system.state.rglob("postgres.log"))
        print(json.dumps(count(log, ["ledger", "executor"], args.intents), indent=2))


if __name__ == "__main__":
    main()
