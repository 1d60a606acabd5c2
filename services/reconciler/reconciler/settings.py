from egis_common.settings import EgisSettings
from executor.adapters.binance import BinanceCredentials
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

# An admin command stops asking the venue this long before its time is up: enough for one wait for the next
# weight window or a Retry-After (up to a minute), then writing what it found and the reply.
ADMIN_MARGIN_S = 120.0


class ReconcilerSettings(EgisSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__")

    service_name: str = "reconciler"
    db_schema: str = "reconciler"
    metrics_port: int = 9104
    # EGIS_OPERATOR_KEYS='{"alice": "<key>"}': who may send admin commands, and the key each signs with.
    operator_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # An admin command older than this is refused, so a captured command cannot be replayed later.
    admin_command_max_age_seconds: float = Field(default=300, gt=0)
    # How long one admin command may run: the admin consumer's max.poll.interval (Kafka's default, 300 s, is too
    # short for a sync of 1,000 positions at the default weight budget), and the venue is asked until
    # ADMIN_MARGIN_S before it; what was not asked by then is reported, for a later run.
    admin_max_command_seconds: float = Field(default=900, gt=ADMIN_MARGIN_S)
    # Encoded size of one admin reply on Kafka (whose default limit is 1 MB): a larger report comes in parts.
    admin_reply_part_bytes: int = Field(default=512 * 1024, ge=2048)
    # Read-only look-ups of pending orders: EGIS_BINANCE_ACCOUNTS='{"acct": {"api_key": .., "api_secret": ..}}'.
    binance_accounts: dict[str, BinanceCredentials] = Field(default_factory=dict)
    binance_live: bool = False
    binance_base_url: str | None = None
    # How long an order may take to become visible on the exchange; "not found" means absent only after it.
    pending_not_found_window_seconds: float = Field(default=120, ge=0)
    # Request weight per minute the reconciler's look-ups may spend on Binance (the venue allows 2400 per IP,
    # shared with the executor's trading on the same IP); 0 means unlimited. 429 and 418 are honoured either way.
    binance_weight_budget_per_minute: int = Field(default=1000, ge=0)

    def admin_ask_for_s(self) -> float:
        return self.admin_max_command_seconds - ADMIN_MARGIN_S

    def admin_max_poll_interval_ms(self) -> int:
        return int(self.admin_max_command_seconds * 1000)
