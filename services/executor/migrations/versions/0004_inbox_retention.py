"""An index for pruning the inbox by age (egis_common.retention)."""

from alembic import op

from egis_common.outbox import drop_inbox_age_index, index_inbox_by_age

revision = "executor_0004"
down_revision = "executor_0003"
branch_labels = None
depends_on = None
SCHEMA = "executor"


def upgrade() -> None:
    index_inbox_by_age(op, SCHEMA)


def downgrade() -> None:
    drop_inbox_age_index(op, SCHEMA)
