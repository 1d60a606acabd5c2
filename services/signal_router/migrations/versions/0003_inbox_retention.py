"""Indexes for pruning by age: the inbox (egis_common.retention) and the dedup rows (repository.prune_signals)."""

from alembic import op

from egis_common.outbox import drop_inbox_age_index, index_inbox_by_age

revision = "signal_router_0003"
down_revision = "signal_router_0002"
branch_labels = None
depends_on = None
SCHEMA = "signal_router"


def upgrade() -> None:
    index_inbox_by_age(op, SCHEMA)
    op.create_index("signals_decided_at", "signals", ["decided_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("signals_decided_at", "signals", schema=SCHEMA)
    drop_inbox_age_index(op, SCHEMA)
