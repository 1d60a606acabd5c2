"""Who settled a pending order and on what evidence (the reconciler's RecordResolution), next to how and when.

A resolution is complete or absent: its time, its name and who made it, together. Intents may now leave
`pending_reconciliation` for `filled` or `rejected`; no constraint here encodes transitions, and the
ones on `filled` (the fill's facts) and `rejected` (a code, a position) hold for those intents too.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "executor_0010"
down_revision = "executor_0009"
branch_labels = None
depends_on = None
SCHEMA = "executor"
COMPLETE = "(resolved_at IS NULL) = (resolution IS NULL)"


def upgrade() -> None:
    op.add_column("pending_reconciliations", sa.Column("resolved_by", sa.Text, nullable=True), schema=SCHEMA)
    op.add_column("pending_reconciliations", sa.Column("resolution_evidence", JSONB, nullable=True), schema=SCHEMA)
    op.execute(f"UPDATE {SCHEMA}.pending_reconciliations SET resolved_by = 'unknown' "
               "WHERE resolved_at IS NOT NULL AND resolved_by IS NULL")
    op.drop_constraint("pending_resolution_complete", "pending_reconciliations", schema=SCHEMA)
    op.create_check_constraint("pending_resolution_complete", "pending_reconciliations",
                               f"{COMPLETE} AND (resolved_at IS NULL) = (resolved_by IS NULL)", schema=SCHEMA)


def downgrade() -> None:
    op.drop_constraint("pending_resolution_complete", "pending_reconciliations", schema=SCHEMA)
    op.create_check_constraint("pending_resolution_complete", "pending_reconciliations", COMPLETE, schema=SCHEMA)
    op.drop_column("pending_reconciliations", "resolution_evidence", schema=SCHEMA)
    op.drop_column("pending_reconciliations", "resolved_by", schema=SCHEMA)
