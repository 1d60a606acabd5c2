"""The venues' own settings: the paper venue's rules and an API key pair for Binance.

Kept apart from the venue modules so that a service's settings can name them
without importing python-binance or SQLAlchemy tables.
"""

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class PaperSymbol(BaseModel):
    """The exchange filters of one paper symbol, as Binance's exchangeInfo states them."""

    model_config = ConfigDict(frozen=True)

    step_size: Decimal = Field(gt=0)
    tick_size: Decimal = Field(gt=0)
    min_qty: Decimal = Field(default=Decimal("0"), ge=0)
    min_notional_usd: Decimal = Field(ge=0)


DEFAULT_PAPER_SYMBOLS = {
    "BTCUSDT": PaperSymbol(step_size=Decimal("0.001"), tick_size=Decimal("0.1"), min_notional_usd=Decimal("5")),
    "ETHUSDT": PaperSymbol(step_size=Decimal("0.001"), tick_size=Decimal("0.01"), min_notional_usd=Decimal("5")),
    "SOLUSDT": PaperSymbol(step_size=Decimal("0.01"), tick_size=Decimal("0.01"), min_notional_usd=Decimal("5")),
    "BNBUSDT": PaperSymbol(step_size=Decimal("0.01"), tick_size=Decimal("0.01"), min_notional_usd=Decimal("5")),
    "XRPUSDT": PaperSymbol(step_size=Decimal("0.1"), tick_size=Decimal("0.0001"), min_notional_usd=Decimal("5")),
    "DOGEUSDT": PaperSymbol(step_size=Decimal("1"), tick_size=Decimal("0.00001"), min_notional_usd=Decimal("5")),
}


class PaperSettings(BaseModel):
    """The paper venue: its symbols, fees, slippage, fills and accounts (EGIS_PAPER__<FIELD>)."""

    model_config = ConfigDict(frozen=True)

    symbols: dict[str, PaperSymbol] = Field(default_factory=lambda: dict(DEFAULT_PAPER_SYMBOLS))
    # Rules for any other symbol; None makes an unlisted symbol unknown to the venue (-1121).
    other_symbols: PaperSymbol | None = PaperSymbol(
        step_size=Decimal("0.001"), tick_size=Decimal("0.01"), min_notional_usd=Decimal("5")
    )
    taker_fee_rate: Decimal = Field(default=Decimal("0.0004"), ge=0, lt=1)
    slippage_bps: Decimal = Field(default=Decimal("0"), ge=0, lt=10000)
    # Share of a market order's quantity the book can fill; below 1 gives partial fills.
    fill_ratio: Decimal = Field(default=Decimal("1"), ge=0, le=1)
    leverage: Decimal = Field(default=Decimal("1"), gt=0)
    default_balance_usd: Decimal = Field(default=Decimal("1000000000"), ge=0)
    balances_usd: dict[str, Decimal] = Field(default_factory=dict)
    # A booking that failed because the database was unavailable is tried again for this long, then refused
    # (nothing was placed); below the executor's exchange_timeout_seconds, after which the outcome is unknown.
    booking_retry_seconds: float = Field(default=8.0, ge=0)


class BinanceCredentials(BaseModel):
    """One Binance API key pair; SecretStr so neither is ever printed or logged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    api_secret: SecretStr
