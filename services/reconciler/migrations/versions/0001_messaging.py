"""The reconciler schema's outbox and inbox."""

from alembic import op
from egis_common.outbox import create_messaging_tables, drop_messaging_tables

revision = "reconciler_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "reconciler"


def upgrade() -> None:
    create_messaging_tables(op, SCHEMA)


def downgrade() -> None:
    drop_messaging_tables(op, SCHEMA)
