from pydantic import SecretStr

from egis_common.settings import EgisSettings


class ExecutorSettings(EgisSettings):
    service_name: str = "executor"
    db_schema: str = "executor"
    metrics_port: int = 9103
    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    # Testnet unless live trading is switched on explicitly.
    binance_live: bool = False
