"""One trial: a fresh database and services, the trial's bots, the load with its one fault, quiet, the checks.

setup     database from the template, Binance accounts, mark prices, the services (a failpoint
          armed, or a second instance, when the fault needs it), an admin token, the bots
load      every planned signal POSTed on schedule, while the fault is injected and undone
quiet     wait until nothing is left to do (quiescence.py), from the later of the load's and the fault's end
check     gather the evidence, run every check, write result.json and history.jsonl
teardown  stop the services, drop the database (kept with --keep)
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import aiohttp
import checks
import evidence
from cluster import SERVICES, Cluster, Instance
from injectors import Context, Injection, inject
from quiescence import wait_until_quiet
from schedule import Plan, bots
from sqlalchemy.ext.asyncio import create_async_engine
from system import set_mark_prices
from traffic import Bot, Traffic

from egis_common.topics import DEAD_LETTER_TOPIC, LEDGER_EVENTS
from ledger import auth

PAPER_MARKS = {"ETHUSDT": Decimal("2942.67"), "SOLUSDT": Decimal("151.37"), "BNBUSDT": Decimal("612.3")}
BINANCE_MARKS = {"ETHUSDT": "2942.67", "SOLUSDT": "151.37"}
INITIAL_BUDGET_USD, ORDER_SIZE_USD = "1000", "25"  # $25 clears Binance's ETHUSDT minimum notional of 20
SETTLE_BEFORE_LOAD_S = 30.0


@dataclass(frozen=True)
class Options:
    quiescence_timeout_s: float = 30.0
    keep: bool = False
    # Settings for one service's processes, for experiments: {"reconciler": {"EGIS_...": "10"}}.
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)


async def run_trial(cluster: Cluster, plan: Plan, options: Options, trial_dir: Path) -> dict:
    tag = f"{plan.kind}-{plan.seed}-{uuid.uuid4().hex[:6]}"
    accounts = await asyncio.to_thread(_binance_accounts, cluster, plan, tag)
    venue_env = {
        "EGIS_BINANCE_ACCOUNTS": json.dumps({a: {"api_key": k, "api_secret": s} for a, (k, s) in accounts.items()}),
        "EGIS_BINANCE_BASE_URL": cluster.binance.base_url,
    }
    service_env = {
        service: {
            **(venue_env if service in ("executor", "reconciler") else {}),
            **options.service_env.get(service, {}),
        }
        for service in SERVICES
    }
    await asyncio.to_thread(cluster.begin_trial, f"egis_fx_{tag.replace('-', '_')}", trial_dir, service_env)
    result: dict = {
        "kind": plan.kind,
        "seed": plan.seed,
        "fault": plan.fault.describe(),
        "database": cluster.database,
        "trial_dir": str(trial_dir),
    }
    phases = result["phases_s"] = {}
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()

    try:
        for symbol, price in PAPER_MARKS.items():
            await set_mark_prices(cluster.dsn, [symbol], price)
        ctx = Context(cluster, 0.0, asyncio.Event(), {}, armed=await asyncio.to_thread(_start_services, cluster, plan))
        phase("services")
        token = await _admin_token(cluster.url)
        trial_bots = await _create_bots(cluster, plan, tag, token, accounts)
        await _until_gateways_know(cluster, trial_bots)
        ctx.start_offsets = await evidence.end_offsets(
            cluster.system.bootstrap,
            [DEAD_LETTER_TOPIC, LEDGER_EVENTS.name, *_redelivered(plan)],
            cluster.system.kafka_admin,
        )
        settled, before = await wait_until_quiet(
            cluster.dsn, cluster.system.bootstrap, time.time(), SETTLE_BEFORE_LOAD_S, cluster.system.kafka_admin
        )
        if settled is None:
            result["setup_note"] = f"not quiet before the load: {before.describe()}"
        phase("bots")
        injection, posts = await _load_with_fault(cluster, plan, ctx, trial_bots)
        phase("load_and_fault")
        reference = max(ctx.load_ended_at, injection.ended_at)
        quiet_s, last = await wait_until_quiet(
            cluster.dsn, cluster.system.bootstrap, reference, options.quiescence_timeout_s, cluster.system.kafka_admin
        )
        result.update(_timings(ctx, injection, quiet_s, last))
        phase("quiet")
        e = await evidence.gather(
            dsn=cluster.dsn,
            bootstrap=cluster.system.bootstrap,
            kafka_login=cluster.system.kafka_admin,
            posts=[_checked(p) for p in posts],
            binance_control=cluster.binance.control,
            binance_accounts={a: k for a, (k, _) in accounts.items()},
            account_venue={b.exchange_account: b.venue for b in trial_bots.values()},
            ledger_url=_ledger_url(cluster),
            token=token,
            start_offsets=ctx.start_offsets,
        )
        e.quiescent_after_s, e.quiescence_timeout_s = quiet_s, options.quiescence_timeout_s
        e.exited_on_their_own = [i.label for i in cluster.instances if not i.alive() and i.pid not in injection.killed]
        findings = checks.check_all(e)
        _write_evidence(trial_dir, e)
        result.update(
            fired=injection.fired,
            notes=injection.notes,
            load=_load_summary(posts),
            outcomes=_outcomes(e),
            findings=[asdict(f) for f in findings],
            violations=sum(f.violation for f in findings),
        )
        phase("check")
        _write(trial_dir, result, posts)
        return result
    except Exception as error:
        result.update(
            error=f"{type(error).__name__}: {error}"[:500],
            violations=None,
            findings=[],
            traceback=traceback.format_exc(),
        )
        _write(trial_dir, result, [])
        return result
    finally:
        await asyncio.to_thread(cluster.end_trial, options.keep)
        phase("teardown")


# --------------------------------------------------------------------------- setup


def _binance_accounts(cluster: Cluster, plan: Plan, tag: str) -> dict[str, tuple[str, str]]:
    """Fresh accounts on the shared Binance server: nothing an earlier trial left there is this trial's."""
    cluster.binance.control("DELETE", "/_control/requests")
    for symbol, price in BINANCE_MARKS.items():
        cluster.binance.control("POST", "/_control/mark_price", {"symbol": symbol, "price": price})
    accounts = {}
    for i in range(plan.shape.binance_bots):
        key, secret = f"fx-{uuid.uuid4().hex}", uuid.uuid4().hex
        cluster.binance.control("POST", "/_control/accounts", {"apiKey": key, "apiSecret": secret, "usdt": "100000"})
        accounts[f"bn-{tag}-{i}"] = (key, secret)
    return accounts


def _start_services(cluster: Cluster, plan: Plan) -> Instance | None:
    """Every service, started together; returns the one with a failpoint armed, if the fault arms one."""
    params = plan.fault.params
    armed_service = params["service"] if plan.kind == "kill_at_point" else None
    started = {}
    for service in SERVICES:
        env = {"EGIS_FAILPOINTS": f"{params['point']}=kill@{params['hit']}"} if service == armed_service else {}
        started[service] = cluster.start(service, wait=False, **env)
    if plan.kind == "rebalance":
        cluster.start(params["service"], wait=False)
    for instance in cluster.instances:
        cluster.wait_ready(instance)
    return started.get(armed_service)


async def _admin_token(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            return (await auth.create_token(conn, auth.Role.ADMIN, uuid.uuid4(), "bench-faults")).token
    finally:
        await engine.dispose()


def _ledger_url(cluster: Cluster) -> str | None:
    live = cluster.running("ledger")
    return f"http://127.0.0.1:{live[0].http_port}" if live else None


async def _create_bots(
    cluster: Cluster, plan: Plan, tag: str, token: str, accounts: dict[str, tuple[str, str]]
) -> dict[str, Bot]:
    """Through the ledger's API, as a user would: it publishes each bot to the router."""
    binance_accounts = iter(accounts)
    headers = {"Authorization": f"Bearer {token}"}

    async def create(session: aiohttp.ClientSession, label: str, venue: str) -> Bot:
        account = next(binance_accounts) if venue == "binance" else f"paper-{tag}-{label}"
        body = {
            "name": label,
            "signal_key": f"fx-{tag}-{label}",
            "exchange": "paper" if venue == "paper" else "binance_usdm",
            "exchange_account": account,
            "initial_budget_usd": INITIAL_BUDGET_USD,
            "default_order_size_usd": ORDER_SIZE_USD,
        }
        async with session.post(f"{_ledger_url(cluster)}/v1/bots", json=body, headers=headers) as answer:
            created = await answer.json()
            if answer.status != 201:
                raise RuntimeError(f"creating bot {label}: {answer.status} {created}")
        return Bot(label, venue, created["bot_id"], body["signal_key"], created["webhook_secret"], account)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        made = await asyncio.gather(*(create(session, label, venue) for label, venue in bots(plan.shape)))
    return {bot.label: bot for bot in made}


async def _until_gateways_know(cluster: Cluster, trial_bots: dict[str, Bot], timeout_s: float = 60) -> None:
    """Every live gateway answers 422 (not 401) for every bot: a word no action has, past the secret check."""
    deadline = time.time() + timeout_s

    async def known(session: aiohttp.ClientSession, port: int, bot: Bot) -> None:
        body = {"signal_key": bot.signal_key, "secret": bot.secret, "action": "probe", "symbol": "ETHUSDT"}
        while True:
            try:
                async with session.post(f"http://127.0.0.1:{port}/v1/signals", json=body) as answer:
                    if answer.status == 422:
                        return
            except aiohttp.ClientError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"a gateway (:{port}) did not learn bot {bot.label} within {timeout_s}s")
            await asyncio.sleep(0.1)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        await asyncio.gather(
            *(
                known(session, instance.http_port, bot)
                for instance in cluster.running("signal_router")
                for bot in trial_bots.values()
            )
        )


def _redelivered(plan: Plan) -> list[str]:
    return [plan.fault.params["topic"]] if plan.kind == "redelivery" else []


# --------------------------------------------------------------------------- load and fault


async def _load_with_fault(cluster: Cluster, plan: Plan, ctx: Context, trial_bots: dict[str, Bot]):
    def gateways() -> list[str]:
        return [f"http://127.0.0.1:{i.http_port}" for i in cluster.running("signal_router")]

    traffic = Traffic(trial_bots, gateways)
    ctx.load_started_at = time.time() + 0.2
    injector = asyncio.create_task(inject(plan.fault, ctx))
    posts = await traffic.run(plan.signals, ctx.load_started_at)
    ctx.load_ended_at = time.time()
    ctx.load_done.set()
    injection: Injection = await injector
    return injection, posts


def _checked(post) -> checks.Post:
    return checks.Post(
        post.bot_id,
        post.signal_key,
        post.signal.symbol,
        post.signal.action,
        post.signal.client_id,
        post.sent_at,
        post.status,
        post.signal_id,
    )


# --------------------------------------------------------------------------- the result


def _timings(ctx: Context, injection: Injection, quiet_s: float | None, last) -> dict:
    return {
        "load_s": round(ctx.load_ended_at - ctx.load_started_at, 2),
        "fault_started_s": round(injection.started_at - ctx.load_started_at, 2),
        "fault_ended_s": round(injection.ended_at - ctx.load_started_at, 2),
        "quiescence_s": quiet_s,
        "last_probe": last.describe(),
    }


def _load_summary(posts) -> dict:
    return {
        "posts": len(posts),
        "accepted": sum(p.accepted for p in posts),
        "answers": dict(Counter(str(p.status) + (f" {p.reason}" if p.reason else "") for p in posts)),
    }


def _outcomes(e: checks.Evidence) -> dict:
    return {
        "router": dict(
            Counter(d.outcome + (f" {d.skip_reason}" if d.skip_reason else "") for d in e.decisions.values())
        ),
        "intents": dict(
            Counter(f"{i.kind} {i.status}" + (f" {i.skip_reason}" if i.skip_reason else "") for i in e.intents.values())
        ),
        "positions": dict(Counter(p.status for p in e.positions)),
        "orders": dict(Counter(f"{o.venue} {o.status}" for o in e.orders)),
    }


def _write_evidence(trial_dir: Path, e: checks.Evidence) -> None:
    raw = asdict(e)
    raw["venue_positions"] = {"/".join(key): qty for key, qty in e.venue_positions.items()}
    (trial_dir / "evidence.json").write_text(json.dumps(raw, indent=1, default=str))


def _write(trial_dir: Path, result: dict, posts) -> None:
    (trial_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))
    with (trial_dir / "history.jsonl").open("w") as out:
        for post in posts:
            out.write(json.dumps(post.as_json(), default=str) + "\n")
