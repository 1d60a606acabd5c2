from egis_common.settings import EgisSettings
from executor.adapters.binance import BinanceCredentials
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict


class ReconcilerSettings(EgisSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__")

    service_name: str = "reconciler"
    db_schema: str = "reconciler"
    metrics_port: int = 9104
    # EGIS_OPERATOR_KEYS='{"alice": "<key>"}': who may send admin commands, and the key each signs with.
    operator_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # An admin command older than this is refused, so a captured command cannot be replayed later.
    admin_command_max_age_seconds: float = Field(default=300, gt=0)
    # Read-only look-ups of pending orders: EGIS_BINANCE_ACCOUNTS='{"acct": {"api_key": .., "api_secret": ..}}'.
    binance_accounts: dict[str, BinanceCredentials] = Field(default_factory=dict)
    binance_live: bool = False
    binance_base_url: str | None = None
    # How long an order may take to become visible on the exchange; "not found" means absent only after it.
    pending_not_found_window_seconds: float = Field(default=120, ge=0)
    # Request weight per minute the reconciler's look-ups may spend on Binance (the venue allows 2400 per IP,
    # shared with the executor's trading on the same IP); 0 means unlimited. 429 and 418 are honoured either way.
    binance_weight_budget_per_minute: int = Field(default=1000, ge=0)
