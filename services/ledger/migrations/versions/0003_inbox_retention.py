"""An index for pruning the inbox by age (egis_common.retention)."""

from alembic import op

from egis_common.outbox import drop_inbox_age_index, index_inbox_by_age

revision = "ledger_0003"
down_revision = "ledger_0002"
branch_labels = None
depends_on = None
SCHEMA = "ledger"


def upgrade() -> None:
    index_inbox_by_age(op, SCHEMA)


def downgrade() -> None:
    drop_inbox_age_index(op, SCHEMA)
