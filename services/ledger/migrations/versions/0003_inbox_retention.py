"""An index for pruning the inbox by age (egis_common.retention)."""

from alembic import op

revision = "ledger_0003"
down_revision = "ledger_0002"
branch_labels = None
depends_on = None
SCHEMA = "ledger"


def upgrade() -> None:
    op.create_index("inbox_processed_at", "inbox", ["processed_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("inbox_processed_at", "inbox", schema=SCHEMA)
