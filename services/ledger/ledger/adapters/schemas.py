"""Request and response bodies of the ledger's management API.

Money is a decimal string both ways (egis_common.money types); a JSON number is a 422.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from egis_common.contracts import ExchangeName, Side, StopLossPct, TakeProfitPct
from egis_common.money import PositiveUsd, Price, Quantity, SignedUsd, Usd
from ledger import audit, bots
from ledger.auth import Role
from ledger.domain import PositionStatus

Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
SignalKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]  # as the database checks


_TP = "take profit, percent above a long's entry (below a short's), for opens whose signal names no price"
_SL = "stop loss, percent below a long's entry (above a short's), for opens whose signal names no price"


class Problem(BaseModel):
    reason: str
    detail: str = ""


class BotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text
    strategy: Literal["signal_hook"] = "signal_hook"
    signal_key: SignalKey
    exchange: ExchangeName
    exchange_account: Text
    initial_budget_usd: Usd
    default_order_size_usd: PositiveUsd
    paused: StrictBool = False
    take_profit_pct: TakeProfitPct | None = Field(default=None, description=_TP)
    stop_loss_pct: StopLossPct | None = Field(default=None, description=_SL)
    owner_id: UUID | None = Field(default=None, description="admin only; defaults to the token's owner")

    def spec(self) -> bots.NewBot:
        return bots.NewBot(**{f.name: getattr(self, f.name) for f in fields(bots.NewBot)})


class BotEdit(BaseModel):
    """Only the fields sent change. The defaults are never validated, so an explicit null is a 422,
    except for the percentages, where null removes the bot's take profit or stop loss."""

    model_config = ConfigDict(extra="forbid")
    name: Text = None  # type: ignore[assignment]
    signal_key: SignalKey = None  # type: ignore[assignment]
    exchange: ExchangeName = None  # type: ignore[assignment]
    exchange_account: Text = None  # type: ignore[assignment]
    initial_budget_usd: Usd = None  # type: ignore[assignment]
    default_order_size_usd: PositiveUsd = None  # type: ignore[assignment]
    paused: StrictBool = None  # type: ignore[assignment]
    take_profit_pct: TakeProfitPct | None = Field(default=None, description=_TP)
    stop_loss_pct: StopLossPct | None = Field(default=None, description=_SL)


class BotOut(BaseModel):
    bot_id: UUID
    owner_id: UUID
    name: str
    strategy: str
    signal_key: str
    exchange: ExchangeName
    exchange_account: str
    initial_budget_usd: Usd
    default_order_size_usd: PositiveUsd
    paused: bool
    take_profit_pct: TakeProfitPct | None
    stop_loss_pct: StopLossPct | None
    version: int
    created_at: datetime
    updated_at: datetime


class BotCreated(BotOut):
    webhook_secret: str = Field(description="for the webhook; shown in this response only, stored hashed")


class BudgetOut(BaseModel):
    bot_id: UUID
    initial_usd: Usd
    reserved_open_usd: Usd
    reserved_opening_usd: Usd
    available_usd: SignedUsd  # negative when the budget was edited below what is reserved


class PositionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    position_id: UUID
    symbol: str
    side: Side
    status: PositionStatus
    exchange: ExchangeName
    exchange_account: str
    requested_size_usd: Usd
    size_usd: Usd
    executed_qty: Quantity
    avg_entry_price: Price | None
    opened_at: datetime | None
    close_price: Price | None
    closed_at: datetime | None
    realised_pnl_usd: SignedUsd | None
    fee_usd: Usd
    failure_reason: str | None


class TokenOut(BaseModel):
    """A token as an admin sees it: never the token, its hash or its lookup key."""

    model_config = ConfigDict(from_attributes=True)
    token_id: UUID
    name: str
    role: Role
    owner_id: UUID
    created_at: datetime
    last_used_at: datetime | None = Field(description="noted at most once a minute")
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(description="who or what holds it")
    role: Role
    owner_id: UUID | None = Field(
        default=None, description="whose bots a user or viewer token manages; a viewer needs one; default: a new owner"
    )
    expires_in: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="refused from then on: 90m, 12h, 30d, 2w from now, or an ISO 8601 time (UTC unless it says)",
    )


class TokenCreated(TokenOut):
    token: str = Field(description="the bearer token; shown in this response only, stored hashed")


class TokenRevoked(TokenOut):
    revoked_now: bool = Field(description="false when it was revoked already: nothing changed")


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    audit_id: int
    at: datetime
    actor_token_id: UUID | None = Field(description="none when the command line made the change")
    actor_name: str
    actor_role: Role | None
    action: audit.Action
    bot_id: UUID | None
    token_id: UUID | None = Field(description="the token created or revoked")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
