"""Egis's Grafana dashboards, as code: `python deploy/grafana/build.py` writes them to dashboards/, `--check`
exits 1 when the committed JSON is not what this file makes now.

Four dashboards on the metric families the services export: overview, trading (per bot), pipeline
(throughput, latency and consumer lag per stage) and reliability (readiness, pending, drift, dead letters,
outbox backlog, stuck states). Each panel is
one PromQL query; `queries()` hands them to the test that runs every one on a real Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions, VizTooltipOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as StatPanel
from grafana_foundation_sdk.builders.timeseries import Panel as TimeseriesPanel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, SortOrder, TooltipDisplayMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"
EGIS_SERVICE = 'service=~"signal_router|ledger|executor|reconciler"'


def dead_letters(window: str) -> str:
    """Dead letters per topic within `window`, the first one on a topic included.

    Each service starts the series of every topic it consumes at 0, so increase() sees the first dead letter.
    A series born at 1 all the same (a record dead-lettered before the first scrape after a restart) reads 0 in
    increase(), so: series that existed at the window's start count their increase() (which survives a
    restart's reset); series born inside it count whole where their service was scraped at the window's start
    (a Prometheus that just started sees every series as born); the rest, of services that started inside the
    window and so were born at 0, count their increase().
    """
    counter = "egis_messages_dead_lettered_total"
    return (
        f"sum by (topic) ((increase({counter}[{window}]) and {counter} offset {window})"
        f" or ({counter} unless {counter} offset {window} and on(instance) (up offset {window}))"
        f" or increase({counter}[{window}]))"
    )


def p99(histogram: str, by: str) -> str:
    return f"histogram_quantile(0.99, sum by (le, {by}) (rate({histogram}_bucket[{RATE}])))"


def rate(counter: str, by: str) -> str:
    return f"sum by ({by}) (rate({counter}[{RATE}]))"


@dataclass(frozen=True)
class P:
    """One panel: a title, one query, how to show it."""

    title: str
    expr: str
    legend: str = ""
    unit: str = "short"
    stat: bool = False  # a single current number instead of a graph


@dataclass(frozen=True)
class Section:
    title: str
    panels: tuple[P, ...]


OVERVIEW = (
    Section(
        "Health",
        (
            P("Services answering their scrape", f"min by (service) (up{{{EGIS_SERVICE}}})", "{{service}}", stat=True),
            P("Open positions", "sum(egis_ledger_open_positions)", stat=True),
            P("Pending reconciliations", "egis_reconciler_pending_unresolved", stat=True),
            P("Positions in drift", "sum(egis_reconciler_drift_positions)", stat=True),
            P("Dead letters in range", dead_letters("$__range"), "{{topic}}", stat=True),
            P("Intents in flight", "sum(egis_executor_intents_in_flight)", stat=True),
        ),
    ),
    Section(
        "Flow",
        (
            P(
                "Signals accepted per second",
                "sum(rate(egis_gateway_signals_accepted_total[$__rate_interval]))",
                "accepted",
                "reqps",
            ),
            P(
                "Signals rejected per second, by reason",
                rate("egis_gateway_signals_rejected_total", "reason"),
                "{{reason}}",
                "reqps",
            ),
            P(
                "Orders per second, by outcome",
                rate("egis_executor_orders_total", "exchange, outcome"),
                "{{exchange}} {{outcome}}",
                "ops",
            ),
            P("Handler latency p99", p99("egis_handler_seconds", "service, handler"), "{{service}} {{handler}}", "s"),
        ),
    ),
)

TRADING = (
    Section(
        "Bots",
        (
            P("Open positions per bot", 'egis_ledger_open_positions{bot_id=~"$bot"}', "{{bot_id}}"),
            P(
                "Available budget per bot",
                'egis_ledger_available_budget_usd{bot_id=~"$bot"}',
                "{{bot_id}}",
                "currencyUSD",
            ),
        ),
    ),
    Section(
        "Signals and skips",
        (
            P(
                "Webhook rejections, by reason",
                rate("egis_gateway_signals_rejected_total", "reason"),
                "{{reason}}",
                "reqps",
            ),
            P("Webhook latency p99, by outcome", p99("egis_gateway_request_seconds", "outcome"), "{{outcome}}", "s"),
            P("Intents routed, by intent", rate("egis_router_intents_routed_total", "intent"), "{{intent}}", "ops"),
            P(
                "Signals skipped by the router, by reason",
                rate("egis_router_signals_skipped_total", "reason"),
                "{{reason}}",
                "ops",
            ),
            P(
                "Intents skipped by the executor, by reason",
                rate("egis_executor_intents_skipped_total", "reason"),
                "{{reason}}",
                "ops",
            ),
            P(
                "Preflight answers, by outcome and reason",
                rate("egis_ledger_preflight_decisions_total", "outcome, reason"),
                "{{outcome}} {{reason}}",
                "ops",
            ),
        ),
    ),
    Section(
        "Orders",
        (
            P(
                "Orders, by exchange, outcome and code",
                rate("egis_executor_orders_total", "exchange, outcome, code"),
                "{{exchange}} {{outcome}} {{code}}",
                "ops",
            ),
            P(
                "Exchange call latency p99, by operation",
                p99("egis_executor_exchange_seconds", "exchange, operation"),
                "{{exchange}} {{operation}}",
                "s",
            ),
            P(
                "Closes sent again, by outcome",
                rate("egis_executor_close_resends_total", "exchange, outcome"),
                "{{exchange}} {{outcome}}",
                "ops",
            ),
            P(
                "Closures backfilled, by route",
                rate("egis_reconciler_closures_backfilled_total", "route"),
                "{{route}}",
                "ops",
            ),
        ),
    ),
)

PIPELINE = (
    Section(
        "Consumer lag",
        (
            P(
                "Records not yet committed, by group and partition",
                "max by (group, topic, partition) (egis_consumer_lag)",
                "{{group}} {{topic}}/{{partition}}",
            ),
        ),
    ),
    Section(
        "Throughput per stage",
        (
            P(
                "Messages consumed, by service and handler",
                rate("faststream_received_messages_total", "app_name, handler"),
                "{{app_name}} {{handler}}",
                "ops",
            ),
            P(
                "Messages published, by service and topic",
                rate("faststream_published_messages_total", "app_name, destination"),
                "{{app_name}} {{destination}}",
                "ops",
            ),
            P("Outbox rows published, by schema", rate("egis_outbox_published_total", "schema"), "{{schema}}", "ops"),
            P(
                "Exchange facts stored, by table and outcome",
                rate("egis_reconciler_facts_ingested_total", "table, outcome"),
                "{{table}} {{outcome}}",
                "ops",
            ),
        ),
    ),
    Section(
        "Latency",
        (
            P(
                "Handler latency p99, database commit included",
                p99("egis_handler_seconds", "service, handler"),
                "{{service}} {{handler}}",
                "s",
            ),
            P(
                "Consume-to-ack latency p99",
                p99("faststream_received_processed_messages_duration_seconds", "app_name, handler"),
                "{{app_name}} {{handler}}",
                "s",
            ),
            P(
                "Messages being processed",
                "sum by (app_name, handler) (faststream_received_messages_in_process)",
                "{{app_name}} {{handler}}",
            ),
            P(
                "Handler exceptions, by type",
                rate("faststream_received_processed_messages_exceptions_total", "app_name, handler, exception_type"),
                "{{app_name}} {{handler}} {{exception_type}}",
                "ops",
            ),
        ),
    ),
)

RELIABILITY = (
    Section(
        "Readiness and outbox",
        (
            P("Services ready (database and Kafka answer)", "min by (service) (egis_ready)", "{{service}}", stat=True),
            P("Outbox rows unpublished, by schema", "max by (schema) (egis_outbox_unpublished)", "{{schema}}"),
            P(
                "Oldest unpublished outbox row, by schema",
                "max by (schema) (egis_outbox_oldest_unpublished_age_seconds)",
                "{{schema}}",
                "s",
            ),
        ),
    ),
    Section(
        "Pending reconciliations",
        (
            P("Unsettled pending orders, by age", "egis_reconciler_pending_orders", "{{age}}"),
            P("Oldest unsettled pending order", "egis_reconciler_pending_oldest_age_seconds", "oldest", "s"),
            P("Escalated to an operator", "egis_reconciler_pending_escalated", "escalated", stat=True),
            P("Pending in the executor", "egis_executor_pending_reconciliation", "pending", stat=True),
            P(
                "Pending settled, by resolution",
                rate("egis_reconciler_pending_settled_total", "resolved_by, resolution"),
                "{{resolved_by}} {{resolution}}",
                "ops",
            ),
        ),
    ),
    Section(
        "Drift and repairs",
        (
            P("Positions in drift, by kind", "egis_reconciler_drift_positions", "{{kind}}"),
            P(
                "Repair runs, by command and outcome",
                rate("egis_reconciler_repair_runs_total", "command, outcome"),
                "{{command}} {{outcome}}",
                "ops",
            ),
            P(
                "Claims the ledger refused, by command and reason",
                rate("egis_ledger_claims_refused_total", "command, reason"),
                "{{command}} {{reason}}",
                "ops",
            ),
        ),
    ),
    Section(
        "Dead letters and messaging",
        (
            P("Dead letters per topic, 5-minute windows", dead_letters("5m"), "{{topic}}"),
            P(
                "Outbox and inbox rows pruned",
                rate("egis_messaging_rows_pruned_total", "schema, table"),
                "{{schema}} {{table}}",
                "ops",
            ),
        ),
    ),
    Section(
        "Intermediate states",
        (
            P("Intents in flight, by state", "egis_executor_intents_in_flight", "{{state}}"),
            P("Oldest intent in each state", "egis_executor_intents_in_flight_oldest_age_seconds", "{{state}}", "s"),
            P("Reservations waiting behind an order in flight", "egis_ledger_waiting_reservations", "waiting"),
            P("Oldest waiting reservation", "egis_ledger_oldest_waiting_reservation_seconds", "oldest", "s"),
            P(
                "Reservations asked again",
                "sum(rate(egis_executor_reservations_resent_total[$__rate_interval]))",
                "resent",
                "ops",
            ),
        ),
    ),
    # Binance accounts only: a paper system shows these empty.
    Section(
        "Binance user data stream",
        (
            P("Stream connected, by account", "egis_executor_binance_stream_connected", "{{account}}"),
            P(
                "Stream events, by account and type",
                rate("egis_executor_binance_stream_events_total", "account, event"),
                "{{account}} {{event}}",
                "ops",
            ),
            P(
                "Exchange facts published, by source",
                rate("egis_executor_binance_stream_facts_total", "account, source"),
                "{{account}} {{source}}",
                "ops",
            ),
            P(
                "Stream sessions ended, by cause",
                rate("egis_executor_binance_stream_disconnects_total", "account, cause"),
                "{{account}} {{cause}}",
                "ops",
            ),
        ),
    ),
)

DASHBOARDS = {
    "egis-overview": ("Egis overview", OVERVIEW),
    "egis-trading": ("Egis trading", TRADING),
    "egis-pipeline": ("Egis pipeline", PIPELINE),
    "egis-reliability": ("Egis reliability", RELIABILITY),
}


def _panel(spec: P, panel_id: int):
    # The builder leaves a panel's options null unless one is set, and Grafana's dashboard schema wants an object:
    # each kind gets Grafana's own defaults, spelt out (a stat shows the last value; a graph lists its series).
    if spec.stat:
        panel = StatPanel().reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    else:
        panel = (
            TimeseriesPanel()
            .legend(
                VizLegendOptions()
                .display_mode(LegendDisplayMode.LIST)
                .placement(LegendPlacement.BOTTOM)
                .show_legend(True)
            )
            .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.NONE))
        )
    query = Dataquery().expr(spec.expr).ref_id("A")
    if spec.legend:
        query = query.legend_format(spec.legend)
    return (
        panel.id(panel_id)
        .title(spec.title)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .height(4 if spec.stat else 8)
        .span(4 if spec.stat else 12)
        .with_target(query)
    )


def build(uid: str) -> dict:
    title, sections = DASHBOARDS[uid]
    dashboard = Dashboard(title).uid(uid).tags(["egis"]).time("now-1h", "now").refresh("30s").timezone("browser")
    if any("$bot" in p.expr for s in sections for p in s.panels):
        # Only the ledger's position and budget gauges carry a bot label (bounded: one series per live bot).
        dashboard = dashboard.with_variable(
            QueryVariable("bot")
            .label("bot")
            .datasource(DATASOURCE)
            .query("label_values(egis_ledger_open_positions, bot_id)")
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    panel_id = 0
    for section in sections:
        panel_id += 1
        dashboard = dashboard.with_row(Row(section.title).id(panel_id))
        for spec in section.panels:
            panel_id += 1
            dashboard = dashboard.with_panel(_panel(spec, panel_id))
    return json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))


def render(uid: str) -> str:
    return json.dumps(build(uid), indent=2, sort_keys=True) + "\n"


# What Grafana puts in place of the dashboards' variables before it sends a query, for running them without it.
AS_SENT = {"$__rate_interval": "1m", "$__range": "5m", "$bot": ".*"}


def queries(variables: dict[str, str] | None = None) -> dict[str, str]:
    """Every panel's query, by "dashboard: panel title"; with `variables` (e.g. AS_SENT) put in their place."""
    found = {
        f"{uid}: {p.title}": p.expr for uid, (_, sections) in DASHBOARDS.items() for s in sections for p in s.panels
    }
    for name, value in (variables or {}).items():
        found = {title: expr.replace(name, value) for title, expr in found.items()}
    return found


def stale() -> list[str]:
    """The dashboards whose committed JSON differs from what this file makes now (or is missing)."""

    def committed(uid: str) -> str | None:
        path = DASHBOARDS_DIR / f"{uid}.json"
        return path.read_text() if path.exists() else None

    extra = {p.stem for p in DASHBOARDS_DIR.glob("*.json")} - DASHBOARDS.keys()
    return sorted(extra | {uid for uid in DASHBOARDS if committed(uid) != render(uid)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed JSON is out of date")
    arguments = parser.parse_args()
    if arguments.check:
        if outdated := stale():
            print(f"out of date: {', '.join(outdated)}; run python deploy/grafana/build.py", file=sys.stderr)
            return 1
        print(f"{len(DASHBOARDS)} dashboards up to date")
        return 0
    DASHBOARDS_DIR.mkdir(exist_ok=True)
    for uid in DASHBOARDS:
        (DASHBOARDS_DIR / f"{uid}.json").write_text(render(uid))
        print(f"written: {DASHBOARDS_DIR / f'{uid}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
