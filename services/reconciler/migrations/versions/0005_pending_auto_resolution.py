"""Pending orders resolved without an operator: each order's look-ups, its next one, who settled it, escalation."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "reconciler_0005"
down_revision = "reconciler_0004"
branch_labels = None
depends_on = None
SCHEMA = "reconciler"
TABLE = "pending_orders"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("attempts", sa.Integer, nullable=False, server_default="0"), schema=SCHEMA)
    # NULL: never looked up, due at once.
    op.add_column(TABLE, sa.Column("next_attempt_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column(TABLE, sa.Column("last_lookup", JSONB), schema=SCHEMA)
    op.add_column(TABLE, sa.Column("escalated_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column(TABLE, sa.Column("resolved_by", sa.Text), schema=SCHEMA)
    # Settled before this column existed: by the executor's own report, or by an operator nobody recorded.
    op.execute(f"UPDATE {SCHEMA}.{TABLE} SET resolved_by = CASE WHEN resolution LIKE 'settled_by_executor:%' "
               "THEN 'executor' ELSE 'operator:unknown' END WHERE resolved_at IS NOT NULL")
    op.create_check_constraint("pending_orders_attempts_not_negative", TABLE, "attempts >= 0", schema=SCHEMA)
    op.create_check_constraint("pending_orders_resolved_by_known", TABLE,
                               "(resolved_at IS NULL) = (resolved_by IS NULL) AND (resolved_by IS NULL OR "
                               "resolved_by IN ('auto', 'executor') OR resolved_by LIKE 'operator:_%')",
                               schema=SCHEMA)
    op.create_index("pending_orders_due", TABLE, ["next_attempt_at"], schema=SCHEMA,
                    postgresql_where=sa.text("resolved_at IS NULL"))
    op.create_index("pending_orders_resolved_automatically", TABLE, ["resolved_at"], schema=SCHEMA,
                    postgresql_where=sa.text("resolved_by = 'auto'"))


def downgrade() -> None:
    op.drop_index("pending_orders_resolved_automatically", TABLE, schema=SCHEMA)
    op.drop_index("pending_orders_due", TABLE, schema=SCHEMA)
    op.drop_constraint("pending_orders_resolved_by_known", TABLE, schema=SCHEMA)
    op.drop_constraint("pending_orders_attempts_not_negative", TABLE, schema=SCHEMA)
    for column in ("resolved_by", "escalated_at", "last_lookup", "next_attempt_at", "attempts"):
        op.drop_column(TABLE, column, schema=SCHEMA)
