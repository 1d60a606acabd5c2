"""`egis signals show <signal_id>`: what became of a signal, from the ledger's signal journal."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import typer
from rich.status import Status

from egis_cli.main import Json, Ledger, clean_errors, emit, err, out, table

app = typer.Typer(no_args_is_help=True, help="Signals: what became of each, through the ledger's API.")
OUTCOME_WORDS = {"routed": "routed to an order intent", "skipped": "skipped", None: "not decided"}


@app.command("show")
@clean_errors
def show(signal_id: UUID, as_json: Json = False) -> None:
    """A signal's fate: accepted or duplicate, routed or skipped with its reason, its intent, orders, position."""
    with Status("asking the ledger", console=err):
        fate = Ledger().call("GET", f"/v1/signals/{signal_id}")
    emit(fate, as_json, lambda: render(fate))


def render(fate: dict[str, Any]) -> None:
    out.print(f"signal {fate['signal_id']}: {fate['status']}, {_decision(fate)}")
    out.print(f"bot {fate['bot_id']}, {fate['action'] or '-'} {fate['symbol'] or '-'}, received {fate['received_at']}")
    if fate["duplicates"]:
        out.print(f"{fate['duplicates']} duplicate post(s) of it since")
    intent = fate["intent"]
    if intent:
        answer = intent["preflight"] or "not answered yet"
        reason = f" ({intent['preflight_reason']})" if intent["preflight_reason"] else ""
        out.print(f"intent {intent['intent_id']} ({intent['intent']}): ledger {answer}{reason}")
    if fate["orders"]:
        rows = [[o["purpose"], o["client_order_id"], o["exchange_order_id"], o["status"]] for o in fate["orders"]]
        out.print(table("orders", ["purpose", "client order id", "exchange order id", "status"], rows))
    position = fate["position"]
    if position:
        size = position["size_usd"]
        if position["requested_size_usd"] != size:
            size = f"{size} (requested {position['requested_size_usd']})"
        out.print(
            table(
                "position",
                ["position", "symbol", "side", "status", "qty", "entry", "size", "close price", "pnl"],
                [
                    [
                        position["position_id"],
                        position["symbol"],
                        position["side"],
                        position["status"],
                        position["executed_qty"],
                        position["avg_entry_price"],
                        size,
                        position["close_price"],
                        position["realised_pnl_usd"],
                    ]
                ],
            )
        )


def _decision(fate: dict[str, Any]) -> str:
    words = OUTCOME_WORDS.get(fate["outcome"], fate["outcome"])
    if fate["outcome"] == "skipped" or (fate["status"] != "accepted" and fate["reason"]):
        detail = f": {fate['detail']}" if fate["detail"] else ""
        return f"{words} ({fate['reason']}{detail})"
    return words
