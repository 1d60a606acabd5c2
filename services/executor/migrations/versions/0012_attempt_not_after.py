"""Each attempt's `not_after`: when the executor stops waiting for its exchange call (the attempt's time plus the
call's timeout). Its order carries it to the venue, and a pending record of it to the reconciler, so an attempt
left `submitting` by a crash is handed over with the same time its order was sent with.

NULL for attempts recorded before this revision, and for intents never sent: the venue is told no time, and its
"not found" for them is never final.
"""

import sqlalchemy as sa
from alembic import op

revision = "executor_0012"
down_revision = "executor_0011"
branch_labels = None
depends_on = None
SCHEMA = "executor"


def upgrade() -> None:
    op.add_column("intents", sa.Column("not_after", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    op.create_check_constraint("intents_not_after_of_an_attempt", "intents",
                               "not_after IS NULL OR send_attempts >= 1", schema=SCHEMA)


def downgrade() -> None:
    op.drop_constraint("intents_not_after_of_an_attempt", "intents", type_="check", schema=SCHEMA)
    op.drop_column("intents", "not_after", schema=SCHEMA)
