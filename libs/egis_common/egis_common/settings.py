"""Settings: pydantic-settings with the `EGIS_` prefix, one class per service.

Secrets are `SecretStr`, so printing or logging a settings object shows
`**********` instead of a password, a token or an exchange key.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EgisSettings(BaseSettings):
    """What every service needs: Kafka, its Postgres schema, logging, metrics."""

    model_config = SettingsConfigDict(env_prefix="EGIS_", extra="ignore", frozen=True)

    service_name: str
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # The service's own Kafka principal (SASL/SCRAM-SHA-512; egis_common.access says what it may do). No
    # username: no login, for a broker without authentication. kafka_ssl: SASL_SSL, for production networks.
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ssl: bool = False
    kafka_ssl_cafile: str | None = None  # the CA that signed the brokers' certificates; None: the system's
    # postgresql+asyncpg://user:password@host:port/database
    database_url: SecretStr = SecretStr("postgresql+asyncpg://egis:egis@127.0.0.1:5432/egis")
    db_schema: str
    db_pool_size: int = Field(default=10, ge=1)
    log_level: str = "INFO"
    log_json: bool = True
    # Loopback by default; a container sets 0.0.0.0 so Prometheus can scrape it.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(ge=0, le=65535)
    # A message whose handler fails this many times on a healthy system goes to the dead-letter topic;
    # failures while a dependency is unavailable do not count (egis_common.failures).
    consumer_max_attempts: int = Field(default=5, ge=1)
    # How long one delivery is retried while its failures are transient, before the consumer seeks back and
    # fetches it again; below Kafka's max poll interval (300 s), so the consumer keeps its partitions.
    consumer_transient_hold_seconds: float = Field(default=120.0, gt=0, lt=300)
    # The relay also wakes on every commit; this is only the crash-recovery sweep.
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Published outbox rows are kept this long, for debugging (see egis_common.retention).
    outbox_retention_hours: float = Field(default=72, gt=0)
    # Inbox claims must outlive every consumed topic's retention (Kafka's default: 7 days),
    # or a very late redelivery would not be recognised.
    inbox_retention_days: float = Field(default=30, ge=8)
    # How often the pruning runs.
    retention_interval_seconds: float = Field(default=3600, gt=0)
