"""An index for pruning the inbox by age (egis_common.retention)."""

from alembic import op

revision = "executor_0004"
down_revision = "executor_0003"
branch_labels = None
depends_on = None
SCHEMA = "executor"


def upgrade() -> None:
    op.create_index("inbox_processed_at", "inbox", ["processed_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("inbox_processed_at", "inbox", schema=SCHEMA)
