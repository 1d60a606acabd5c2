"""Each fault kind, done to the running system while the load runs.

An injector waits for its moment, does the damage, undoes it as an operator or a
supervisor would (restart the killed process, start the database again), and
returns when the fault is over: `Injection.ended_at` is the moment the system had
everything back, from which the time to quiescence counts. Blocking steps (a
process start, pg_ctl) run in threads, so the load keeps its schedule meanwhile.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from cluster import Cluster, Instance
from evidence import Offsets, read_window
from schedule import Fault

ORDER_PATH = "/fapi/v1/order"
# The executor's default: a call unanswered this long is an unknown outcome. An accept_then_timeout is over then.
EXECUTOR_REQUEST_TIMEOUT_S = 5.0


@dataclass
class Injection:
    fault: Fault
    started_at: float = 0.0
    ended_at: float = 0.0
    fired: bool = False
    notes: list[str] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)  # pids this fault killed on purpose

    def note(self, text: str) -> None:
        self.notes.append(f"{time.strftime('%H:%M:%S')} {text}")


@dataclass
class Context:
    cluster: Cluster
    load_started_at: float
    load_done: asyncio.Event
    start_offsets: Offsets
    armed: Instance | None = None  # the instance started with a failpoint armed (kill_at_point)
    load_ended_at: float = float("inf")


async def inject(fault: Fault, ctx: Context) -> Injection:
    injection = Injection(fault)
    if fault.kind != "kill_at_point":
        await _until(ctx.load_started_at + fault.at_s)
    injection.started_at = time.time()
    await INJECTORS[fault.kind](fault, ctx, injection)
    injection.ended_at = injection.ended_at or time.time()
    return injection


async def _until(moment: float) -> None:
    if (pause := moment - time.time()) > 0:
        await asyncio.sleep(pause)


# --------------------------------------------------------------------------- processes


async def kill_random(fault: Fault, ctx: Context, injection: Injection) -> None:
    victim = ctx.cluster.running(fault.params["service"])[0]
    victim.kill()
    injection.fired, injection.killed = True, [victim.pid]
    injection.note(f"SIGKILL {victim.label} (pid {victim.pid})")
    await asyncio.sleep(fault.params["down_s"])
    fresh = await asyncio.to_thread(ctx.cluster.restart, victim)
    injection.note(f"{fresh.label} restarted (pid {fresh.pid})")


async def kill_at_point(fault: Fault, ctx: Context, injection: Injection) -> None:
    armed = ctx.armed
    # The load's end and a little more: a hit may come from the last signals' work.
    while armed.alive() and not (ctx.load_done.is_set() and time.time() > ctx.load_ended_at + 5):
        await asyncio.sleep(0.05)
    if armed.alive():
        injection.note(f"{fault.params['point']} was not hit {fault.params['hit']} times: nothing killed")
        return
    injection.started_at = time.time()
    injection.fired, injection.killed = armed.died_of_sigkill(), [armed.pid]
    injection.note(
        f"{armed.label} died at {fault.params['point']} hit {fault.params['hit']} (exit {armed.process.returncode})"
    )
    await asyncio.sleep(fault.params["down_s"])
    fresh = await asyncio.to_thread(ctx.cluster.restart, armed)
    injection.note(f"{fresh.label} restarted without the failpoint (pid {fresh.pid})")


async def rebalance(fault: Fault, ctx: Context, injection: Injection) -> None:
    first, second = ctx.cluster.running(fault.params["service"])[:2]
    victim = first if fault.params["victim"] == "first" else second
    victim.kill()
    injection.fired, injection.killed = True, [victim.pid]
    injection.note(f"SIGKILL {victim.label} of two (pid {victim.pid}); the other takes its partitions over")


# --------------------------------------------------------------------------- Kafka and Postgres


async def kafka_kill(fault: Fault, ctx: Context, injection: Injection) -> None:
    await asyncio.to_thread(ctx.cluster.kill_kafka)
    injection.fired = True
    injection.note("SIGKILL kafka")
    await asyncio.sleep(fault.params["down_s"])
    await asyncio.to_thread(ctx.cluster.start_kafka_again)
    injection.note("kafka restarted and answering")


async def postgres_down(fault: Fault, ctx: Context, injection: Injection) -> None:
    await asyncio.to_thread(ctx.cluster.stop_postgres_now)
    injection.fired = True
    injection.note("postgres stopped (immediate)")
    await asyncio.sleep(fault.params["down_s"])
    await asyncio.to_thread(ctx.cluster.start_postgres_again)
    injection.note("postgres started again")


async def postgres_refuse(fault: Fault, ctx: Context, injection: Injection) -> None:
    await ctx.cluster.refuse_connections(True)
    injection.fired = True
    injection.note("new connections refused, open ones terminated")
    await asyncio.sleep(fault.params["refuse_s"])
    await ctx.cluster.refuse_connections(False)
    injection.note("connections accepted again")


# --------------------------------------------------------------------------- Kafka records


async def redelivery(fault: Fault, ctx: Context, injection: Injection) -> None:
    """The topic's records of this trial so far, published again: duplicates, in a shuffled order."""
    topic = fault.params["topic"]
    start = {tp: offset for tp, offset in ctx.start_offsets.items() if tp.topic == topic}
    records = await read_window(ctx.cluster.system.bootstrap, start, login=ctx.cluster.system.kafka_admin)
    copies = [r for r in records for _ in range(fault.params["copies"])]
    random.Random(fault.params["shuffle_seed"]).shuffle(copies)
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.cluster.system.bootstrap,
        acks="all",
        enable_idempotence=True,
        **ctx.cluster.system.kafka_admin,
    )  # the super user: a redelivery, not a new writer
    await producer.start()
    try:
        for record in copies:
            await producer.send(topic, record.value, key=record.key, headers=list(record.headers or ()))
        await producer.flush()
    finally:
        await producer.stop()
    injection.fired = bool(copies)
    injection.note(f"{len(copies)} copies of {len(records)} records of {topic} published again, shuffled")


# --------------------------------------------------------------------------- the Binance server


async def binance_orders_fault(fault: Fault, ctx: Context, injection: Injection) -> None:
    """The next `count` order placements misbehave; over when the last of them was answered (or given up on)."""
    server = ctx.cluster.binance
    body = {"kind": fault.params["fault"], "count": fault.params["count"], "method": "POST", "path": ORDER_PATH}
    if "retry_after_s" in fault.params:
        body["retryAfterS"] = fault.params["retry_after_s"]
    since_ms = int(time.time() * 1000)
    await asyncio.to_thread(server.control, "POST", "/_control/faults", body)
    injection.note(f"armed {body}")
    faulted: list[dict] = []
    # Orders behind an unknown outcome may wait for it, so fewer than `count` may come: then the load's end decides.
    while len(faulted) < fault.params["count"] and not (
        ctx.load_done.is_set() and time.time() > ctx.load_ended_at + EXECUTOR_REQUEST_TIMEOUT_S + 2
    ):
        await asyncio.sleep(0.2)
        faulted = [
            r
            for r in await asyncio.to_thread(server.control, "GET", f"/_control/requests?method=POST&path={ORDER_PATH}")
            if r["time"] >= since_ms and r["fault"] == fault.params["fault"]
        ]
    await asyncio.to_thread(server.control, "DELETE", "/_control/faults")  # unused ones must not reach another trial
    injection.fired = bool(faulted)
    if faulted:
        last = max(r["time"] for r in faulted) / 1000
        if fault.params["fault"] == "accept_then_timeout":
            last += EXECUTOR_REQUEST_TIMEOUT_S
        await _until(last)
        injection.ended_at = max(time.time(), last)
    injection.note(f"{len(faulted)} of {fault.params['count']} armed faults hit an order")


async def binance_stream_drop(fault: Fault, ctx: Context, injection: Injection) -> None:
    server = ctx.cluster.binance
    await asyncio.to_thread(server.control, "POST", "/_control/user_streams/accepting", {"accepting": False})
    dropped = (await asyncio.to_thread(server.control, "POST", "/_control/user_streams/drop", {}))["dropped"]
    injection.fired = bool(dropped)
    injection.note(f"{dropped} user-data sockets dropped; new ones refused for {fault.params['refuse_s']}s")
    await asyncio.sleep(fault.params["refuse_s"])
    await asyncio.to_thread(server.control, "POST", "/_control/user_streams/accepting", {"accepting": True})


INJECTORS = {
    "kill_random": kill_random,
    "kill_at_point": kill_at_point,
    "rebalance": rebalance,
    "kafka_kill": kafka_kill,
    "postgres_stop": postgres_down,
    "postgres_down_5s": postgres_down,
    "postgres_down_60s": postgres_down,
    "postgres_refuse": postgres_refuse,
    "redelivery": redelivery,
    "binance_timeout": binance_orders_fault,
    "binance_5xx": binance_orders_fault,
    "binance_throttle": binance_orders_fault,
    "binance_stream_drop": binance_stream_drop,
}
