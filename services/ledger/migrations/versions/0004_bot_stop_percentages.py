"""A bot's optional take-profit and stop-loss as percentages from the entry (egis_common.contracts bounds)."""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0004"
down_revision = "ledger_0003"
branch_labels = None
depends_on = None
SCHEMA = "ledger"
CHECKS = {
    "bots_take_profit_pct_range": "take_profit_pct > 0 AND take_profit_pct <= 1000",
    "bots_stop_loss_pct_range": "stop_loss_pct > 0 AND stop_loss_pct < 100",
}


def upgrade() -> None:
    for column in ("take_profit_pct", "stop_loss_pct"):
        op.add_column("bots", sa.Column(column, sa.Numeric, nullable=True), schema=SCHEMA)
    for name, condition in CHECKS.items():
        op.create_check_constraint(name, "bots", condition, schema=SCHEMA)


def downgrade() -> None:
    for name in CHECKS:
        op.drop_constraint(name, "bots", type_="check", schema=SCHEMA)
    for column in ("take_profit_pct", "stop_loss_pct"):
        op.drop_column("bots", column, schema=SCHEMA)
