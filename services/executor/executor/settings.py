from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from egis_common.settings import EgisSettings
from egis_venues.settings import BinanceCredentials, PaperSettings, PaperSymbol

__all__ = ["BinanceCredentials", "ExecutorSettings", "PaperSettings", "PaperSymbol"]


class ExecutorSettings(EgisSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__")

    service_name: str = "executor"
    db_schema: str = "executor"
    metrics_port: int = 9103
    db_pool_size: int = Field(default=20, ge=1)
    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    # Testnet unless live trading is switched on explicitly.
    binance_live: bool = False
    paper: PaperSettings = Field(default_factory=PaperSettings)
    # An exchange call that takes longer has an unknown outcome: it goes to reconciliation.
    exchange_timeout_seconds: float = Field(default=10.0, gt=0)
    # Records per consumed batch, as the other services' batch subscribers take (egis_common.broker);
    # the exchange calls of one batch run concurrently.
    batch_max_records: int = Field(default=500, ge=1)
    # At most this many of those calls in flight at once to a remote venue (Binance); the paper
    # venue books a whole batch's orders in one transaction, so it is not bounded.
    exchange_concurrency: int = Field(default=64, ge=1)
    gauge_refresh_seconds: float = Field(default=5.0, gt=0)
    # Startup waits this long for the bots topic to be read to its end (the view of bots whole).
    bots_ready_timeout_seconds: float = Field(default=60, gt=0)
    # An intent whose bot the view does not know, or does not back, waits this long for the view to read the
    # bots topic to its current end before it is refused; longer, and the batch is tried again (Kafka unavailable).
    bots_catch_up_seconds: float = Field(default=5.0, gt=0)
    # While recording an exchange's outcome fails for a transient reason (the database unavailable), it is
    # tried again for this long before the outcome is kept as a pending record instead. The batch's consumer
    # does not poll meanwhile, so this stays well below Kafka's max poll interval (300 s): the exchange calls
    # come before it, and after it a last try that is still in flight, the one-by-one try and the rescue, each
    # of which may wait out a connection attempt to a database that does not answer.
    outcome_retry_seconds: float = Field(default=120.0, gt=0, le=150)
    # An intent still `preflight_requested` this long after it asked the ledger for its reservation asks
    # again (the command or the answer was lost): a periodic job looks every `reservation_resend_every_seconds`,
    # at most `reservation_resend_batch` intents a round.
    reservation_resend_after_seconds: float = Field(default=30.0, gt=0)
    reservation_resend_every_seconds: float = Field(default=5.0, gt=0)
    reservation_resend_batch: int = Field(default=500, ge=1)
    # An intent still `submitting` after this long lost its answer for good (dead-lettered): it goes to
    # reconciliation. Far above exchange_timeout_seconds, so no submission in flight is ever swept.
    stale_submission_seconds: float = Field(default=600.0, gt=0)
    # A close the venue certainly did not execute (it said it never processed it, or no order with its client order
    # id exists after the venue's window) is sent again, same client order id, for this long after its first
    # attempt; then it is rejected. Between attempts it waits the venue's Retry-After, or a random backoff whose
    # window doubles from close_resend_min_seconds to close_resend_max_seconds. A periodic job looks every
    # close_resend_every_seconds, at most close_resend_batch closes a round.
    close_resend_for_seconds: float = Field(default=300.0, ge=0)
    close_resend_min_seconds: float = Field(default=1.0, gt=0)
    close_resend_max_seconds: float = Field(default=30.0, gt=0)
    close_resend_every_seconds: float = Field(default=1.0, gt=0)
    close_resend_batch: int = Field(default=50, ge=1)
    # Exchange account name -> API credentials, from EGIS_BINANCE_ACCOUNTS as JSON:
    # '{"main": {"api_key": "...", "api_secret": "..."}}'. Orders name the account to use.
    binance_accounts: dict[str, BinanceCredentials] = Field(default_factory=dict)
    # Tests and demos point the adapter at a local Binance-compatible server ("http://127.0.0.1:8765").
    binance_base_url: str | None = None
    # One HTTP request to Binance unanswered after this long is Unknown (looked up later, never resent).
    binance_request_timeout_seconds: float = Field(default=5.0, gt=0)
    # An order the venue said it did not process (429, 418, a 503 that says so) is sent again for this long,
    # when the venue's Retry-After fits, then refused; below exchange_timeout_seconds.
    binance_resend_within_seconds: float = Field(default=8.0, ge=0)
    # Step, tick and notional rules change rarely; refetched after this long.
    binance_symbol_rules_ttl_seconds: float = Field(default=3600.0, gt=0)
    # The user data stream of each Binance account: every order, algo order and trade as an exchange fact
    # (executor.adapters.user_streams), REST covering the gaps.
    binance_stream_enabled: bool = True
    # The websocket base ("wss://...", no /ws/<listenKey>); None: ws:// on binance_base_url, else the venue's.
    binance_stream_url: str | None = None
    # The venue drops a listen key 60 minutes after its last keepalive.
    binance_stream_keepalive_seconds: float = Field(default=1800.0, gt=0, lt=3600)
    binance_stream_reconnect_min_seconds: float = Field(default=0.5, gt=0)
    binance_stream_reconnect_max_seconds: float = Field(default=30.0, gt=0)
    # At start-up the stream knows nothing of the past: trades this far back are fetched over REST
    # (republished facts are stored once downstream). The venue keeps userTrades for 7 days at most per query.
    binance_stream_catch_up_seconds: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
