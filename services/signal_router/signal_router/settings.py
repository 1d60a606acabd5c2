from __future__ import annotations

from decimal import Decimal

from pydantic import Field, SecretStr, model_validator

from egis_common.kafka_login import Login
from egis_common.settings import EgisSettings

# USDⓈ-M perpetuals a signal may name; extend with EGIS_SYMBOLS='["BTCUSDT", ...]'.
DEFAULT_SYMBOLS = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "BNBUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "AVAXUSDT",
    "LINKUSDT",
    "LTCUSDT",
)


class RouterSettings(EgisSettings):
    service_name: str = "signal_router"
    db_schema: str = "signal_router"
    metrics_port: int = 9101
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Signals whose own timestamp is older than this are skipped as stale.
    max_signal_lag_seconds: int = Field(default=60, ge=1)
    # Dedup rows are kept this long. A signal older than max_signal_lag_seconds is skipped as
    # stale anyway, so a row only has to outlive that (and Kafka's redelivery window, 7 days).
    dedup_retention_days: float = Field(default=30, ge=8)
    # A signal timestamp further in the future than this is refused: it would never go stale.
    max_clock_skew_seconds: int = Field(default=30, ge=0)
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    min_order_size_usd: Decimal = Field(default=Decimal("1"), gt=0)
    max_order_size_usd: Decimal = Field(default=Decimal("1000000"), gt=0)
    max_body_bytes: int = Field(default=4096, ge=256)
    # The gateway producer gives up on a record after this long (aiokafka request timeout),
    # so a 503 never leaves a record behind to be written later.
    gateway_kafka_timeout_seconds: float = Field(default=0.8, gt=0, le=1.0)
    # Upper bound on the whole publish wait; TradingView cancels at 3 s.
    gateway_publish_deadline_seconds: float = Field(default=1.9, gt=0, le=2.5)
    # The gateway answers a post whose signal the router decided before as a duplicate, if one primary-key
    # read says so within this budget; otherwise it publishes it, and the router skips the duplicate.
    gateway_dedup_lookup_seconds: float = Field(default=0.1, gt=0, le=1.0)
    # Both halves run in one process by default. Either can be switched off to run them as two
    # processes of this service, so webhook answers do not queue behind routing work.
    gateway_enabled: bool = True
    router_enabled: bool = True
    # The webhook gateway's own Kafka principal, which may only write signals (egis_common.access); the
    # router half logs in as kafka_username. TLS as the service's kafka_ssl.
    gateway_kafka_username: str | None = None
    gateway_kafka_password: SecretStr | None = None

    @model_validator(mode="after")
    def _gateway_logs_in_too(self) -> RouterSettings:
        if self.gateway_enabled and self.kafka_username and not self.gateway_kafka_username:
            raise ValueError(
                "EGIS_KAFKA_USERNAME is set but EGIS_GATEWAY_KAFKA_USERNAME is not: the webhook "
                "gateway logs in to Kafka as a principal of its own, which may only write signals"
            )
        return self

    def gateway_login(self) -> Login:
        return Login(self.gateway_kafka_username, self.gateway_kafka_password, self.kafka_ssl, self.kafka_ssl_cafile)

    # Startup waits this long for the bots topic to be read to its end.
    bots_ready_timeout_seconds: float = Field(default=60, gt=0)
