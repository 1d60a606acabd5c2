"""Run as its own process by the crash test.

`write-and-die <symbol>`: commit a state change with its outbox row, then die by
SIGKILL before anything is published. `relay`: start like a restarted service
and let the relay publish what the dead process left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from probe import ProbeSettings, record_effect  # noqa: E402

from egis_common.contracts import MarkPrice  # noqa: E402
from egis_common.runtime import build_runtime  # noqa: E402


async def write_and_die(symbol: str) -> None:
    runtime = build_runtime(ProbeSettings())
    message = MarkPrice(symbol=symbol, price=Decimal("2942.67"))
    async with runtime.engine.begin() as conn:
        await record_effect(conn, message.message_id, "produced")
        await runtime.outbox.add(conn, message)
    print(message.message_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


async def relay() -> None:
    runtime = build_runtime(ProbeSettings())
    await runtime.broker.start()
    try:
        print(await runtime.relay.publish_pending(), flush=True)
    finally:
        await runtime.broker.stop()
        await runtime.stop()


if __name__ == "__main__":
    if sys.argv[1] == "write-and-die":
        asyncio.run(write_and_die(sys.argv[2]))
    else:
        asyncio.run(relay())
