from egis_common.settings import EgisSettings


class ReconcilerSettings(EgisSettings):
    service_name: str = "reconciler"
    db_schema: str = "reconciler"
    metrics_port: int = 9104
