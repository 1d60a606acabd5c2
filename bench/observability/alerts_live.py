"""Every Egis alert rule, fired by a real Prometheus scraping the real system, when its condition is staged.

    uv run python bench/observability/alerts_live.py [--rules-scale 0.1] [--only EgisDrift,EgisDeadLetter]

It brings a system up with `egis-local up` in a state directory of its own, checks that no Egis alert is
pending or firing, then stages each alert's condition through the running system, waits for the alert to fire,
records how long that took, restores, and (where the rule can clear quickly) waits for the alert to clear.

Without `--rules-scale` the alerts come from the Prometheus `up` started, which loads deploy/prometheus/alerts.yml
as shipped: thresholds of minutes make that run take about twenty minutes. With `--rules-scale F` the script starts
a Prometheus of its own on the same targets, loading a copy of the rules in which every `for:` duration and every
threshold on a `*_seconds` metric is multiplied by F; nothing else in the expressions changes. The first line of
the output says which.

How each condition is staged:

- EgisDeadLetter: a record that is not JSON on egis.signals.received.v1 (as the gateway, which writes it).
- EgisDrift: the reconciler's read model holds an open position whose entry fill it never saw (a lost fill
  fact), then an operator's `drift-report`; restored by removing the row and reporting again.
- EgisPendingReconciliationOld, EgisPendingEscalated: a pending order on a Binance account the reconciler has no
  credentials for, so its look-ups can never get an answer; the reconciler is started with a short
  EGIS_PENDING_ESCALATE_AFTER_SECONDS (--escalate-after) so that escalation comes within the run.
- EgisOutboxOld: a row in the reconciler's outbox for a topic its Kafka principal may not write (ACLs deny it),
  so the relay cannot publish it.
- EgisServiceDown, EgisIntentStuck: the ledger killed with SIGKILL, then a signal: the executor records the
  intent and asks the ledger for a reservation that nobody answers.
- EgisServiceNotReady, EgisConsumerLagGrowing: Postgres stopped, so every service's readiness fails and the
  router's handlers wait, while signals keep arriving on egis.signals.received.v1.

EgisReservationWaitingLong is not staged: see NOT_STAGED.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
SIGNALS_TOPIC = "egis.signals.received.v1"
NOT_STAGED = {
    "EgisReservationWaitingLong": (
        "a reservation waits only behind the bot's position in opening or closing; on the paper venue, which "
        "local mode runs, a position leaves opening as soon as the executor's call to the venue's own tables "
        "returns, and holding it there needs a venue that can be told to hang after accepting an order (the "
        "local Binance server of deploy/binance_local does, in tests; egis-local up does not run it)"
    ),
}


# ---------------------------------------------------------------- rules


def _duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text))


def scaled_rules(text: str, scale: float) -> dict:
    """The rules with every `for:` and every threshold on a `*_seconds` metric multiplied by `scale`."""
    rules = yaml.safe_load(text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{max(5, math.ceil(_duration_s(rule['for']) * scale))}s"
            rule["expr"] = re.sub(
                r"(_seconds(?:\{[^}]*\})?\s*>\s*)(\d+(?:\.\d+)?)",
                lambda m: f"{m.group(1)}{max(1, math.ceil(float(m.group(2)) * scale))}",
                rule["expr"],
            )
    return rules


def alert_names(rules: dict) -> list[str]:
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


# ---------------------------------------------------------------- the system


@dataclass
class System:
    state: Path
    service_env: dict[str, str]

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")}
        env |= self.service_env | {"EGIS_LOCAL_STATE_DIR": str(self.state)}
        done = subprocess.run(
            [sys.executable, "-m", "egis_localinfra.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise SystemExit(f"egis-local {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-500:]}")
        return done

    def env(self) -> dict[str, str]:
        lines = (self.state / "env").read_text().splitlines()
        return {k: v.strip("'") for k, v in (line.removeprefix("export ").split("=", 1) for line in lines)}

    def services(self) -> dict[str, dict]:
        return json.loads((self.state / "services.json").read_text())

    def tool(self, module: str, *args: str, token: str | None = None) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EGIS_")} | self.env()
        if token:
            env["EGIS_LEDGER_TOKEN"] = token
        done = subprocess.run(
            [sys.executable, "-m", module, *args], env=env, capture_output=True, text=True, timeout=180
        )
        if done.returncode != 0:
            raise SystemExit(f"{module} {' '.join(args)} failed: {(done.stdout + done.stderr).strip()[-500:]}")
        return done.stdout

    def sql(self, statement: str, **params) -> list:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        async def run() -> list:
            engine = create_async_engine(self.env()["EGIS_DATABASE_URL"])
            try:
                async with engine.begin() as conn:
                    result = await conn.execute(text(statement), params)
                    return list(result.all()) if result.returns_rows else []
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def produce(self, principal: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
        """Records on `topic`, written with `principal`'s own Kafka login (the ACLs decide as for the service)."""
        from aiokafka import AIOKafkaProducer

        from egis_localinfra import local_access

        options = local_access.users(self.state)[principal].client_options()

        async def run() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.env()["EGIS_KAFKA_BOOTSTRAP_SERVERS"], acks="all", **options
            )
            await producer.start()
            try:
                for key, value in values:
                    await producer.send_and_wait(topic, value, key=key, headers=[("content-type", b"application/json")])
            finally:
                await producer.stop()

        asyncio.run(run())

    def new_bot(self, signal_key: str) -> tuple[str, str, str]:
        issued = self.tool("ledger.cli", "create-token", "--role", "admin", "--name", f"alerts-{signal_key}")
        token = next(line.split()[1] for line in issued.splitlines() if line.startswith("token: "))
        created = json.loads(
            self.tool(
                "ledger.cli", "bots", "create", "--name", signal_key, "--signal-key", signal_key,
                "--exchange", "paper", "--exchange-account", f"paper-{signal_key}",
                "--initial-budget-usd", "100", "--default-order-size-usd", "10", "--json",
                token=token,
            )
        )  # fmt: skip
        return token, created["bot_id"], created["webhook_secret"]

    def post_signal(self, body: dict) -> int:
        request = urllib.request.Request(
            f"{self.env()['EGIS_GATEWAY_URL']}/v1/signals",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


# ---------------------------------------------------------------- Prometheus


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen | None = None

    def get(self, path: str, **params: str):
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as answer:
            body = json.loads(answer.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus answered {body}")
        return body["data"]

    def alerts(self) -> dict[str, str]:
        """Egis alerts now: name -> "firing" or "pending" (firing wins when several series disagree)."""
        found: dict[str, str] = {}
        for alert in self.get("/api/v1/alerts")["alerts"]:
            name = alert["labels"].get("alertname", "")
            if name.startswith("Egis") and found.get(name) != "firing":
                found[name] = alert["state"]
        return found

    def rule_names(self) -> set[str]:
        return {rule["name"] for group in self.get("/api/v1/rules")["groups"] for rule in group["rules"]}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def own_prometheus(state: Path, rules: dict, workdir: Path) -> Prometheus:
    """A Prometheus of the script's own on the targets `up` wrote, loading `rules`."""
    from egis_localinfra.ports import free_port

    (workdir / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(workdir / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "egis",
                "file_sd_configs": [{"files": [str(state / "prometheus" / "targets.json")], "refresh_interval": "5s"}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(workdir / "prometheus.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process)
    wait_for(lambda: _answers(f"{prometheus.url}/-/ready"), 30, "the script's Prometheus to be ready")
    return prometheus


def _targets_up(prometheus: Prometheus) -> int:
    result = prometheus.get(
        "/api/v1/query", query='count(up{service=~"signal_router|ledger|executor|reconciler"} == 1)'
    )
    return int(result["result"][0]["value"][1]) if result["result"] else 0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return found


# ---------------------------------------------------------------- stages


@dataclass
class Stage:
    """One staged condition: the alerts it must fire, how to stage it, how to undo it."""

    name: str
    alerts: tuple[str, ...]
    stage: Callable[[System], None]
    restore: Callable[[System], None]
    clears: bool = True  # whether the alerts clear soon after the restore (a dead letter counts for 10 minutes)
    fired_after_s: dict[str, float] = field(default_factory=dict)
    cleared_after_s: dict[str, float] = field(default_factory=dict)
    also_firing: set[str] = field(default_factory=set)  # other alerts the same condition set off


def _poison(system: System) -> None:
    system.produce("gateway", SIGNALS_TOPIC, [(b"staged-poison", b"{this is not json")])


def _drift_row(system: System) -> None:
    system.sql(
        "INSERT INTO reconciler.positions (position_id, bot_id, symbol, side, status, open_intent_id, "
        "executed_qty, avg_entry_price, opened_at, updated_at) VALUES (:position, :bot, 'ETHUSDT', 'long', 'open', "
        ":intent, 0.003, 2942.67, now(), now())",
        position=STAGED_POSITION,
        bot=uuid.uuid4(),
        intent=uuid.uuid4(),
    )
    report = system.tool("reconciler.cli", "drift-report")
    if "position_open_but_no_fill_fact" not in report:
        raise SystemExit(f"the drift report did not see the staged drift: {report[:500]}")


def _drift_undone(system: System) -> None:
    system.sql("DELETE FROM reconciler.positions WHERE position_id = :position", position=STAGED_POSITION)
    system.tool("reconciler.cli", "drift-report")


def _pending_row(system: System) -> None:
    system.sql(
        "INSERT INTO reconciler.pending_orders (intent_id, bot_id, position_id, intent, symbol, client_order_id, "
        "exchange, exchange_account, cause, pending_since, attempts, next_attempt_at) VALUES (:intent, :bot, "
        ":position, 'open', 'ETHUSDT', :client, 'binance_usdm', 'staged-no-credentials', 'timeout', now(), 0, now())",
        intent=STAGED_PENDING,
        bot=uuid.uuid4(),
        position=uuid.uuid4(),
        client=f"staged-{STAGED_PENDING.hex[:20]}",
    )


def _pending_undone(system: System) -> None:
    system.sql("DELETE FROM reconciler.pending_orders WHERE intent_id = :intent", intent=STAGED_PENDING)


def _outbox_row(system: System) -> None:
    system.sql(
        "INSERT INTO reconciler.outbox (message_id, topic, key, payload, headers) "
        "VALUES (:id, :topic, NULL, convert_to('{}', 'UTF8'), '{}'::jsonb)",
        id=STAGED_OUTBOX,
        topic=SIGNALS_TOPIC,  # the gateway's topic: the reconciler's principal may not write it
    )


def _outbox_undone(system: System) -> None:
    system.sql("DELETE FROM reconciler.outbox WHERE message_id = :id", id=STAGED_OUTBOX)


def _ledger_killed(system: System) -> None:
    os.kill(int(system.services()["ledger"]["pid"]), signal.SIGKILL)
    _, _, secret = BOT
    if not secret:  # EgisIntentStuck not asked for
        return
    status = system.post_signal({"signal_key": "alerted", "secret": secret, "action": "buy", "symbol": "ETHUSDT"})
    if status != 202:
        raise SystemExit(f"the gateway answered {status} to the signal")


def _postgres_stopped(system: System) -> None:
    from egis_localinfra.postgres import stop_postgres

    stop_postgres(system.state / "postgres")
    _more_signals(system)


def _more_signals(system: System, count: int = 60) -> None:
    """Signals for a key nobody holds: the router skips them once it can, and until then they are its lag."""
    from egis_common import contracts as c

    values = []
    for _ in range(count):
        message = c.SignalReceived(
            signal_id=uuid.uuid4(),
            dedup_key=uuid.uuid4().hex,
            signal_key="staged-lag",
            bot_id=uuid.uuid4(),
            action=c.SignalAction.OPEN_LONG,
            symbol="ETHUSDT",
        )
        values.append((b"staged-lag", message.model_dump_json().encode()))
    system.produce("gateway", SIGNALS_TOPIC, values)


def _up_again(system: System) -> None:
    system.cli("up")


STAGED_POSITION, STAGED_PENDING, STAGED_OUTBOX = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
BOT: tuple[str, str, str] = ("", "", "")
STAGES = [
    Stage("a poison record on a consumed topic", ("EgisDeadLetter",), _poison, lambda s: None, clears=False),
    Stage("a position in drift, reported", ("EgisDrift",), _drift_row, _drift_undone),
    Stage(
        "a pending order no venue can answer",
        ("EgisPendingReconciliationOld", "EgisPendingEscalated"),
        _pending_row,
        _pending_undone,
    ),
    Stage("an outbox row the relay may not publish", ("EgisOutboxOld",), _outbox_row, _outbox_undone),
    Stage(
        "the ledger killed, a signal waiting on it", ("EgisServiceDown", "EgisIntentStuck"), _ledger_killed, _up_again
    ),
    Stage(
        "Postgres stopped while signals arrive",
        ("EgisServiceNotReady", "EgisConsumerLagGrowing"),
        _postgres_stopped,
        _up_again,
    ),
]


# ---------------------------------------------------------------- panels


def trading_flow(system: System, log) -> None:
    """An open, a rejected second open, a close and a signal refused at the gateway, through the webhook."""
    token, bot_id, secret = BOT

    def post(action: str, signal_key: str = "alerted") -> int:
        body = {"signal_key": signal_key, "secret": secret, "action": action, "symbol": "ETHUSDT"}
        return system.post_signal(body | {"signal_id": uuid.uuid4().hex})

    def position(status: str) -> bool:
        found = json.loads(system.tool("ledger.cli", "bots", "positions", bot_id, "--json", token=token))
        return any(p["status"] == status for p in found)

    system.cli("mark-price", "ETHUSDT", "2942.67")  # the paper venue fills at it
    if not position("open"):
        post("buy")
        wait_for(lambda: position("open"), 120, "the open to fill", every=2)
    post("sell")  # a short while the long is open: the ledger refuses it (existing_open_position)
    post("close")
    wait_for(lambda: position("closed"), 120, "the close to fill", every=2)
    post("buy", signal_key="nobody-holds-this-key")  # refused at the gateway
    closed = len(json.loads(system.tool("ledger.cli", "bots", "positions", bot_id, "--json", token=token)))
    status = system.post_signal(
        {"signal_key": "alerted", "secret": secret, "action": "buy", "symbol": "ETHUSDT"}
        | {"signal_id": uuid.uuid4().hex, "take_profit_price": "3000"}
    )
    assert status == 202, status
    wait_for(lambda: position("open"), 120, "the open with a take-profit to fill", every=2)
    system.cli("mark-price", "ETHUSDT", "3100")  # the paper venue triggers the take-profit; the reconciler backfills

    def backfilled() -> bool:
        found = json.loads(system.tool("ledger.cli", "bots", "positions", bot_id, "--json", token=token))
        return len(found) > closed and all(p["status"] == "closed" for p in found)

    wait_for(backfilled, 120, "the take-profit closure to be backfilled", every=2)
    log("flow: an open, a refused open, a close, a refused signal and a take-profit closure went through")


def panels_without_data(prometheus: Prometheus) -> tuple[list[str], list[str]]:
    """The dashboard queries, as Grafana would send them, that answer with no series: those whose metrics this
    system exports, and those it does not (Binance's stream without a Binance account, say)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("egis_dashboards_build", REPO / "deploy" / "grafana" / "build.py")
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build  # its dataclasses look their module up there
    spec.loader.exec_module(build)
    names = set(prometheus.get("/api/v1/label/__name__/values"))
    empty = {
        title: expr
        for title, expr in build.queries(build.AS_SENT).items()
        if not prometheus.get("/api/v1/query", query=expr)["result"]
    }
    absent = {t for t, e in empty.items() if not set(re.findall(r"\b(?:egis|faststream)_[a-z_]+|\bup\b", e)) <= names}
    exported = [f"{t}: {e}" for t, e in empty.items() if t not in absent]
    return exported, [f"{t}: {empty[t]}" for t in sorted(absent)]


# ---------------------------------------------------------------- the run


def run_stage(stage: Stage, wanted: set[str], system: System, prometheus: Prometheus, timeout_s: float, log) -> None:
    """Stage, wait for the wanted alerts of the stage to fire, restore, wait for them to clear."""
    expected = [name for name in stage.alerts if name in wanted]
    before = prometheus.alerts()
    early = {name: before[name] for name in expected if name in before}
    if early:
        raise AssertionError(f"{stage.name}: {early} before the condition was staged")
    log(f"staging: {stage.name} (waiting for {', '.join(expected)})")
    started = time.monotonic()
    stage.stage(system)
    waiting = set(expected)
    keep_feeding = stage.stage is _postgres_stopped
    fed_at = time.monotonic()
    try:
        while waiting:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{stage.name}: {sorted(waiting)} did not fire within {timeout_s:.0f} s")
            now = prometheus.alerts()
            stage.also_firing |= {n for n, state in now.items() if state == "firing" and before.get(n) != "firing"}
            for name in sorted(waiting):
                if now.get(name) == "firing":
                    stage.fired_after_s[name] = round(time.monotonic() - started, 1)
                    log(f"  {name} fired after {stage.fired_after_s[name]} s")
                    waiting.discard(name)
            if keep_feeding and time.monotonic() - fed_at > 20:  # lag must keep growing, not just be high
                _more_signals(system)
                fed_at = time.monotonic()
            time.sleep(1)
    finally:
        restored = time.monotonic()
        stage.restore(system)
        stage.also_firing -= set(stage.alerts)
        if stage.also_firing:
            log(f"  also firing meanwhile: {', '.join(sorted(stage.also_firing))}")
        if stage.clears:
            for name in expected:
                try:
                    wait_for(lambda n=name: n not in prometheus.alerts(), timeout_s, f"{name} to clear", every=2)
                    stage.cleared_after_s[name] = round(time.monotonic() - restored, 1)
                    log(f"  {name} cleared {stage.cleared_after_s[name]} s after the restore")
                except TimeoutError as error:
                    log(f"  {error}")


def main() -> int:
    global BOT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules-scale", type=float, help="multiply `for:` and *_seconds thresholds by this")
    parser.add_argument("--only", help="comma-separated alert names: only the stages that fire them")
    parser.add_argument("--state-dir", type=Path, help="where the system keeps its state (a new temporary one)")
    parser.add_argument("--escalate-after", type=float, default=120, help="the reconciler's escalation, seconds")
    parser.add_argument("--stage-timeout", type=float, help="seconds one stage may take (from the rules)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--panels", action="store_true", help="then an open, a rejection and a close, and every panel query must answer"
    )
    arguments = parser.parse_args()
    rules_text = RULES.read_text()
    rules = (
        yaml.safe_load(rules_text) if arguments.rules_scale is None else scaled_rules(rules_text, arguments.rules_scale)
    )
    wanted = set(arguments.only.split(",")) if arguments.only else set(alert_names(rules))
    unknown = wanted - set(alert_names(rules))
    if unknown:
        raise SystemExit(f"no such alert in {RULES}: {', '.join(sorted(unknown))}")
    stages = [s for s in STAGES if wanted & set(s.alerts)]
    longest_for = max((_duration_s(r.get("for", "0s")) for g in rules["groups"] for r in g["rules"]), default=0)
    timeout_s = arguments.stage_timeout or max(120.0, 900 * (arguments.rules_scale or 1), longest_for + 180)

    workdir = Path(tempfile.mkdtemp(prefix="egis-alerts-"))
    state = arguments.state_dir or workdir / "local"
    system = System(state, {"EGIS_PENDING_ESCALATE_AFTER_SECONDS": str(arguments.escalate_after)})
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {line}", flush=True)

    mode = (
        f"rules scaled by {arguments.rules_scale} (a copy of {RULES.relative_to(REPO)}, `for:` and *_seconds "
        "thresholds only), on the script's own Prometheus"
        if arguments.rules_scale is not None
        else f"rules as shipped ({RULES.relative_to(REPO)}), on the Prometheus `egis-local up` started"
    )
    print(f"mode: {mode}; reconciler escalates after {arguments.escalate_after:g} s", flush=True)
    prometheus: Prometheus | None = None
    results: dict = {"mode": mode, "alerts": {}}
    try:
        system.cli("up")
        log(f"system up in {state}")
        if arguments.rules_scale is None:
            recorded = json.loads((state / "prometheus" / "prometheus.json").read_text())  # what `up` started
            prometheus = Prometheus(f"http://127.0.0.1:{recorded['port']}")
        else:
            prometheus = own_prometheus(state, rules, workdir)
        missing = set(alert_names(rules)) - prometheus.rule_names()
        if missing:
            raise SystemExit(f"Prometheus did not load {', '.join(sorted(missing))}")
        wait_for(lambda: _targets_up(prometheus) == 4, 60, "Prometheus to scrape all four services")
        if (
            "EgisIntentStuck" in wanted or arguments.panels
        ):  # made now: the router and the executor must know the bot before the kill
            BOT = system.new_bot("alerted")
        time.sleep(15)  # a few evaluations on a healthy system: nothing may be pending or firing
        if firing := prometheus.alerts():
            raise AssertionError(f"alerts on a healthy system: {firing}")
        log("no Egis alert pending or firing on the healthy system")
        for stage in stages:
            run_stage(stage, wanted, system, prometheus, timeout_s, log)
            for name in stage.alerts:
                if name in wanted:
                    results["alerts"][name] = {
                        "staged": stage.name,
                        "fired_after_s": stage.fired_after_s.get(name),
                        "cleared_after_s": stage.cleared_after_s.get(name) if stage.clears else "not waited for",
                        "also_firing": sorted(stage.also_firing),
                    }
        if arguments.panels:
            trading_flow(system, log)
            try:  # a rate needs two scrapes of what the flow counted
                wait_for(lambda: not panels_without_data(prometheus)[0], 60, "every panel query to answer", every=5)
            except TimeoutError:
                pass
            results["panels_without_data"], results["panels_not_exported"] = panels_without_data(prometheus)
            for line in results["panels_without_data"]:
                log(f"  no data: {line}")
            for line in results["panels_not_exported"]:
                log(f"  not exported by this system: {line}")
            log(
                f"panels: {len(results['panels_without_data'])} queries without data, "
                f"{len(results['panels_not_exported'])} on metrics this system does not export"
            )
    finally:
        if prometheus is not None:
            prometheus.stop()
        if not arguments.state_dir:
            subprocess.run(
                [sys.executable, "-m", "egis_localinfra.cli", "down"],
                env={k: v for k, v in os.environ.items() if not k.startswith("EGIS_")}
                | {"EGIS_LOCAL_STATE_DIR": str(state)},
                capture_output=True,
                timeout=120,
            )
    not_fired = sorted(wanted - {n for n, r in results["alerts"].items() if r["fired_after_s"] is not None})
    for name in not_fired:
        print(f"not staged: {name}: {NOT_STAGED.get(name, 'no stage fires it')}")
    results["not_staged"] = {name: NOT_STAGED.get(name, "no stage fires it") for name in not_fired}
    print(f"done in {time.monotonic() - started:.0f} s: {len(wanted) - len(not_fired)} of {len(wanted)} alerts fired")
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))
    stuck = sorted(n for n, r in results["alerts"].items() if r["cleared_after_s"] is None)
    if stuck:
        print(f"did not clear after the restore: {', '.join(stuck)}")
    return 0 if set(not_fired) <= set(NOT_STAGED) and not stuck and not results.get("panels_without_data") else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, TimeoutError, RuntimeError, OSError) as error:
        sys.exit(f"alerts_live: {error}")
