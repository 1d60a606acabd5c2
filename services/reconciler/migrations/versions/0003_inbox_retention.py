"""An index for pruning the inbox by age (egis_common.retention)."""

from alembic import op

revision = "reconciler_0003"
down_revision = "reconciler_0002"
branch_labels = None
depends_on = None
SCHEMA = "reconciler"


def upgrade() -> None:
    op.create_index("inbox_processed_at", "inbox", ["processed_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("inbox_processed_at", "inbox", schema=SCHEMA)
