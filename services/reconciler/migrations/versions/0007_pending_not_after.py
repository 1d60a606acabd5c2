"""A pending order's `not_after` (OrderPendingReconciliation.not_after): when the executor stopped waiting for its
exchange call. The paper venue books an order only before it, so its "not found" after it is final and settles
the order at once; NULL (an older executor, or Binance, which cannot hold to it) keeps the not-found window.
"""

import sqlalchemy as sa
from alembic import op

revision = "reconciler_0007"
down_revision = "reconciler_0006"
branch_labels = None
depends_on = None
SCHEMA = "reconciler"
TABLE = "pending_orders"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("not_after", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column(TABLE, "not_after", schema=SCHEMA)
