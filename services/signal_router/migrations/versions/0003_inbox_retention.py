"""Indexes for pruning by age: the inbox (egis_common.retention) and the dedup rows (repository.prune_signals)."""

from alembic import op

revision = "signal_router_0003"
down_revision = "signal_router_0002"
branch_labels = None
depends_on = None
SCHEMA = "signal_router"


def upgrade() -> None:
    op.create_index("inbox_processed_at", "inbox", ["processed_at"], schema=SCHEMA)
    op.create_index("signals_decided_at", "signals", ["decided_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("signals_decided_at", "signals", schema=SCHEMA)
    op.drop_index("inbox_processed_at", "inbox", schema=SCHEMA)
