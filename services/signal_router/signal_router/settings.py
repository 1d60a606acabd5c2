from pydantic import Field

from egis_common.settings import EgisSettings


class RouterSettings(EgisSettings):
    service_name: str = "signal_router"
    db_schema: str = "signal_router"
    metrics_port: int = 9101
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Signals whose own timestamp is older than this are skipped as stale.
    max_signal_lag_seconds: int = Field(default=60, ge=1)
