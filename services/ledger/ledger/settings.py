from decimal import Decimal

from pydantic import Field

from egis_common.settings import EgisSettings


class LedgerSettings(EgisSettings):
    service_name: str = "ledger"
    db_schema: str = "ledger"
    metrics_port: int = 9102
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8081, ge=0, le=65535)
    # Structured debug log of every budget computation.
    budget_debug: bool = False
    # Smallest open the ledger reserves; exchanges enforce their own minimum notional too.
    min_order_size_usd: Decimal = Decimal("1")
    # How often the per-bot gauges (open positions, available budget) are recomputed from the database.
    # Every BudgetChanged also sets the budget gauge at once; this pass covers the rest (counts, deleted
    # bots) and holds the event loop in proportion to the active positions (bench/RESULTS.md), so not often.
    gauge_refresh_seconds: float = Field(default=30.0, gt=0)
    # A reservation waits behind its bot's order in flight on the symbol for at most this long, then it is
    # refused (wait_expired): a signal that late is not acted on. Checked every waiting_sweep_seconds.
    max_wait_seconds: float = Field(default=600.0, gt=0)
    waiting_sweep_seconds: float = Field(default=5.0, gt=0)
    # The console's repairs go to the reconciler over the admin topic, as the CLI's do. The reconciler's own
    # EGIS_ADMIN_MAX_COMMAND_SECONDS: how long the commands that ask the venue may run there, so how long a
    # reply may take (egis_common.admin_client.reply_timeout_s); the others are awaited for a minute.
    admin_max_command_seconds: float = Field(default=900, gt=0)
    # A repair's page waits this long for the reply before it says the command is still running (and offers
    # to look again): well below the time a browser or a proxy gives up on a page.
    console_repair_wait_seconds: float = Field(default=20, gt=0)
