"""What every service is made of: broker, engine, outbox relay, metrics; and its app.

Every service's app also refreshes, every OBSERVE_SECONDS, what each service is watched by: its
readiness (`egis_ready`), its outbox backlog and the lag of each of its consumer groups.
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from egis_common.broker import make_broker
from egis_common.consumer_lag import ConsumerLag, Lag, subscribed_groups
from egis_common.db import make_engine
from egis_common.entry import EXIT_FAILED, EXIT_UNAVAILABLE
from egis_common.failures import DeadLetters, is_transient
from egis_common.health import Readiness, brokers_answer, database_answers, has_started, health_routes
from egis_common.kafka_login import client_options
from egis_common.logs import configure_logging, get_logger
from egis_common.metrics import serve_metrics
from egis_common.migrations import upgrade_async
from egis_common.outbox import Inbox, Outbox, OutboxRelay, UnitOfWork
from egis_common.retention import prune_messaging
from egis_common.settings import EgisSettings

log = get_logger(__name__)
# How often readiness, the outbox backlog and consumer lag are measured: about a scrape interval.
OBSERVE_SECONDS = 5.0


@dataclass
class Runtime:
    settings: EgisSettings
    broker: KafkaBroker
    engine: AsyncEngine
    outbox: Outbox
    relay: OutboxRelay
    uow: UnitOfWork
    dead_letters: DeadLetters
    lag: ConsumerLag
    readiness: Readiness | None = None  # made at start-up, when the app knows its brokers
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set when the app's start-up is over
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def inbox(self, consumer: str) -> Inbox:
        return Inbox(self.settings.db_schema, consumer)

    async def start_relay(self) -> None:
        self.start_task(self.relay.run(), "outbox-relay")

    def start_task(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        """A background task that lives as long as the service; cancelled on stop."""
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def every(self, seconds: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
        """Run `job()` every `seconds` until cancelled; a failure is logged and the next run retries."""
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic_job_failed", job=name)
            await asyncio.sleep(seconds)

    async def show_lag(self) -> Lag:
        """The lag of every consumer group this service's broker subscribes, onto `egis_consumer_lag`."""
        return await self.lag.refresh(subscribed_groups([self.broker]))

    async def show_backlog(self) -> None:
        """The outbox's unpublished rows and the age of the oldest, onto their gauges."""
        await self.outbox.show_backlog(self.engine)

    def start_observing(self) -> None:
        """The periodic measurements every service is watched by (readiness once the app has made it)."""
        jobs: dict[str, Callable[[], Awaitable[Any]]] = {
            "outbox-backlog": self.show_backlog,
            "consumer-lag": self.show_lag,
        }
        if self.readiness is not None:
            jobs["readiness"] = self.readiness.check
        for name, job in jobs.items():
            self.start_task(self.every(OBSERVE_SECONDS, job, name), name)

    async def prune(self) -> dict[str, int]:
        """Delete long-published outbox rows and expired inbox claims (egis_common.retention)."""
        return await prune_messaging(
            self.engine,
            self.settings.db_schema,
            outbox_keep=timedelta(hours=self.settings.outbox_retention_hours),
            inbox_keep=timedelta(days=self.settings.inbox_retention_days),
        )

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Cancel the background tasks, then close the relay's producer and the engine.

        Bounded: a task that does not finish within `grace_seconds` of its
        cancellation is logged with its stack and left behind, so a shutdown
        never hangs on it.
        """
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _done, stuck = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in stuck:
                log.error("task_did_not_stop", task=task.get_name(), stack=_stack_of(task))
        self._tasks.clear()
        await self.lag.close()
        await self.relay.close()
        await self.relay.engine.dispose()
        await self.engine.dispose()


def _stack_of(task: asyncio.Task[Any]) -> str:
    buffer = io.StringIO()
    task.print_stack(file=buffer)
    return buffer.getvalue()


def build_runtime(settings: EgisSettings) -> Runtime:
    engine = make_engine(settings)
    outbox = Outbox(settings.db_schema)
    # The relay's own connection: its published marks need not wait for the disk (see make_engine).
    relay = OutboxRelay(
        make_engine(settings, pool_size=1, wait_for_flush=False),
        settings.kafka_bootstrap_servers,
        outbox,
        client_id=f"{settings.service_name}-outbox",
        kafka_options=client_options(settings),
        poll_interval_seconds=settings.outbox_poll_interval_seconds,
    )
    uow = UnitOfWork(engine, relay)
    dead_letters = DeadLetters(
        settings.consumer_max_attempts, uow, outbox, hold_seconds=settings.consumer_transient_hold_seconds
    )
    broker = make_broker(settings, dead_letters)
    lag = ConsumerLag(
        settings.kafka_bootstrap_servers,
        client_id=f"{settings.service_name}-lag",
        kafka_options=client_options(settings),
    )
    return Runtime(settings, broker, engine, outbox, relay, uow, dead_letters, lag)


def build_app(runtime: Runtime, *, service: str, migrate: bool = True) -> FastStream:
    """The FastStream app of one service: migrate, serve metrics, relay the outbox."""
    settings = runtime.settings
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    app = FastStream(runtime.broker, logger=get_logger("faststream"))
    app.context.set_global(_RUNTIME, runtime)  # for serve(): whether the start is over, and the settings

    @app.on_startup
    async def prepare() -> None:
        if migrate:
            await upgrade_async(service, settings.database_url.get_secret_value())
        checks = {
            "started": has_started(runtime.started),
            "database": database_answers(runtime.engine.url),
            "kafka": brokers_answer(app.brokers),
        }
        runtime.readiness = Readiness(settings.service_name, checks)
        server = await serve_metrics(settings.metrics_host, settings.metrics_port, health_routes(runtime.readiness))
        app.on_shutdown(server.stop)
        # Added now, it runs after every after-startup hook, the service's own (an HTTP API, say) included.
        app.after_startup(start_is_over)

    @app.after_startup
    async def run_in_background() -> None:
        await runtime.start_relay()
        runtime.start_task(runtime.every(settings.retention_interval_seconds, runtime.prune, "retention"), "retention")
        runtime.start_observing()

    async def start_is_over() -> None:
        runtime.started.set()
        log.info("service_started", kafka=settings.kafka_bootstrap_servers, schema=settings.db_schema)

    @app.on_shutdown
    async def stopping() -> None:
        await runtime.stop()

    return app


_RUNTIME = "egis_runtime"  # the key of the service's Runtime in its app's context


def serve(app: FastStream) -> None:
    """Run a service's app until SIGINT/SIGTERM, on uvloop where it exists.

    uvloop runs the loop's sockets and callbacks in C (libuv), where asyncio's own loop
    costs every service CPU in Python. Once the app has started, what is alive is frozen
    out of the cyclic garbage collector's sight (`freeze_what_lives_on`).

    A failure before the start is over is one line on stderr naming the service and what
    did not answer, and exit code EXIT_UNAVAILABLE (EXIT_FAILED for anything else), with the traceback
    in the service's log: the person starting it needs the cause, not 180 lines of frames.
    After the start, a failure propagates as it is.
    """
    runtime: Runtime = app.context.get(_RUNTIME)
    app.after_startup(freeze_what_lives_on)  # after build_app's own hooks: they were registered first
    try:
        try:
            import uvloop
        except ImportError:  # Windows: asyncio's loop
            asyncio.run(app.run())
            return
        uvloop.run(app.run())
    except Exception as error:
        if runtime.started.is_set():
            raise
        log.error("service_start_failed", exc_info=error)
        code, line = _start_failure(error, runtime.settings)
        print(f"{_program()}: {line}", file=sys.stderr)
        sys.exit(code)


def _start_failure(error: BaseException, settings: EgisSettings) -> tuple[int, str]:
    """The exit code and the line saying why the start failed: which dependency, where, and its error."""
    name, first = type(error).__name__, (str(error).strip().splitlines() or [""])[0]
    what = first if first.startswith(name) else f"{name}: {first}".rstrip(": ")  # aiokafka's errors name themselves
    dependency = _dependency_of(error, settings)
    if dependency is None:
        return EXIT_FAILED, f"start-up failed: {what} (the traceback is in the log)"
    answer = "does not answer" if is_transient(error) else "refused the start"
    return EXIT_UNAVAILABLE, f"{dependency} {answer}: {what}"


def _dependency_of(error: BaseException, settings: EgisSettings) -> str | None:
    """Which dependency `error` came from, as "Kafka at ..." or "the database at ...", else None; the address as
    the service was given it, without the password."""
    modules = {
        frame.f_globals.get("__name__", "").split(".")[0]
        for e in _chain(error)
        for frame, _ in traceback.walk_tb(e.__traceback__)
    } | {type(e).__module__.split(".")[0] for e in _chain(error)}
    if "aiokafka" in modules:
        return f"Kafka at {settings.kafka_bootstrap_servers}"
    if modules & {"asyncpg", "sqlalchemy", "alembic"}:
        url = make_url(settings.database_url.get_secret_value())
        return f"the database at {url.host}:{url.port}/{url.database}"
    return None


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _program() -> str:
    """The service's command, `egis-ledger`, whether run as that or as `python -m ledger.main`."""
    main = sys.modules["__main__"]
    package = (main.__spec__.name if main.__spec__ else "").split(".")[0]
    return f"egis-{package.replace('_', '-')}" if package else os.path.basename(sys.argv[0])


async def freeze_what_lives_on() -> None:
    """Move every object alive now out of the cyclic garbage collector's sight (`gc.freeze`).

    Once a service has started, what is alive (modules, classes, table metadata, message
    schemas, pools) lives as long as the process, and every full collection would scan it
    all again, pausing the service while messages wait. Frozen, a full collection scans
    only what came after. Collecting first keeps what is already garbage out of the frozen
    set.
    """
    gc.collect()
    gc.freeze()
    log.info("gc_frozen", objects=gc.get_freeze_count())
