"""HTML forms to the API's own request bodies: a bot's fields are validated by `BotCreate` and `BotEdit`,
so a value the API refuses, the console refuses with the same rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from starlette.datastructures import FormData

from egis_common.money import format_decimal
from ledger.adapters.schemas import BotCreate, BotEdit

FIELDS = (
    "name",
    "signal_key",
    "exchange",
    "exchange_account",
    "initial_budget_usd",
    "default_order_size_usd",
    "take_profit_pct",
    "stop_loss_pct",
)
# An empty box means "none" for these; for any other field it is a value the rules refuse.
CLEARABLE = frozenset({"take_profit_pct", "stop_loss_pct"})


class Invalid(Exception):
    """The form's values as sent and, per field, why it was refused."""

    def __init__(self, sent: dict[str, str], errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.sent = sent
        self.errors = errors


def sent(form: FormData) -> dict[str, str]:
    return {name: str(form.get(name) or "").strip() for name in FIELDS}


def _values(fields: dict[str, str]) -> dict[str, Any]:
    return {name: None if name in CLEARABLE and value == "" else value for name, value in fields.items()}


def _errors(error: ValidationError) -> dict[str, str]:
    found: dict[str, str] = {}
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else "form"
        found.setdefault(field, problem["msg"].removeprefix("Value error, "))
    return found


def new_bot(form: FormData) -> BotCreate:
    fields = sent(form)
    owner = str(form.get("owner_id") or "").strip()
    try:
        return BotCreate(**_values(fields), paused=form.get("paused") == "on", owner_id=owner or None)
    except ValidationError as error:
        raise Invalid({**fields, "owner_id": owner}, _errors(error)) from error


def changes(form: FormData, current: sa.Row) -> dict[str, Any]:
    """The fields whose value differs from the bot's, as the API's PATCH would take them."""
    fields = sent(form)
    try:
        edit = BotEdit(**_values(fields))
    except ValidationError as error:
        raise Invalid(fields, _errors(error)) from error
    return {name: getattr(edit, name) for name in FIELDS if getattr(edit, name) != getattr(current, name)}


def text(value: Any) -> str:
    if value is None:
        return ""
    return format_decimal(value) if isinstance(value, Decimal) else str(value)


def of_bot(row: sa.Row) -> dict[str, str]:
    """A bot's current values, to fill the edit form."""
    return {name: text(getattr(row, name)) for name in FIELDS}
