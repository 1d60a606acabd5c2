from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from egis_common.settings import EgisSettings
from egis_venues.settings import BinanceCredentials

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
    # EGIS_OPERATOR_KEYS_FILE: the same as a JSON file, read again whenever it changes, so keys are added,
    # rotated and revoked without a restart. An operator is in one of the two, never both.
    operator_keys_file: Path | None = None
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
    # How long an order may take to show up in a look-up on a venue across the network (Binance): "not found"
    # means absent only after it, and until then the order holds its reservation and the bot's later signals
    # for the symbol wait behind it. Binance refuses a request signed longer ago than its recvWindow (10 s here)
    # and answers a placement, or times out, within seconds; a minute leaves a wide margin.
    pending_not_found_window_seconds: float = Field(default=60, ge=0)
    # The same for the paper venue, whose orders are rows in the executor's database: a booking still in flight
    # when the order went pending (its retries while the database was unavailable included) has ended by then.
    paper_not_found_window_seconds: float = Field(default=20, ge=0)
    # Pending orders are looked up without an operator: every this many seconds, the orders that are due.
    pending_resolve_interval_seconds: float = Field(default=5, gt=0)
    # At most this many orders per run, asked about for at most pending_resolve_max_seconds; the rest wait.
    pending_resolve_batch: int = Field(default=100, gt=0)
    pending_resolve_max_seconds: float = Field(default=60, gt=0)
    # Each order's look-ups back off: a random wait in a window that doubles from the first to the last value.
    # Binance forgets a cancelled or expired order without fills after 3 days: the cap keeps look-ups frequent.
    pending_retry_initial_seconds: float = Field(default=5, gt=0)
    pending_retry_max_seconds: float = Field(default=300, gt=0, le=3600)
    # Still unresolved after this long: escalated to a person (gauge, error log, drift-report).
    pending_escalate_after_seconds: float = Field(default=3600, gt=0, le=86400)
    # Request weight per minute the reconciler's look-ups may spend on Binance (the venue allows 2400 per IP,
    # shared with the executor's trading on the same IP); 0 means unlimited. 429 and 418 are honoured either way.
    binance_weight_budget_per_minute: int = Field(default=1000, ge=0)

    def admin_ask_for_s(self) -> float:
        return self.admin_max_command_seconds - ADMIN_MARGIN_S

    def admin_max_poll_interval_ms(self) -> int:
        return int(self.admin_max_command_seconds * 1000)

    @model_validator(mode="after")
    def _retry_window_grows(self) -> "ReconcilerSettings":
        if self.pending_retry_max_seconds < self.pending_retry_initial_seconds:
            raise ValueError("pending_retry_max_seconds must be at least pending_retry_initial_seconds")
        return self
