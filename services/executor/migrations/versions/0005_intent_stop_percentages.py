"""An open intent's take-profit and stop-loss as percentages from the entry (the bot's, when the signal
named no price): the trigger prices follow from the fill's average price."""

import sqlalchemy as sa
from alembic import op

revision = "executor_0005"
down_revision = "executor_0004"
branch_labels = None
depends_on = None
SCHEMA = "executor"
COLUMNS = ("take_profit_pct", "stop_loss_pct")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("intents", sa.Column(column, sa.Numeric, nullable=True), schema=SCHEMA)
        op.create_check_constraint(f"intents_{column}_positive", "intents", f"{column} > 0", schema=SCHEMA)


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_constraint(f"intents_{column}_positive", "intents", type_="check", schema=SCHEMA)
        op.drop_column("intents", column, schema=SCHEMA)
