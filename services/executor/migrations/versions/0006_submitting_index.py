"""An index on the intents left `submitting`, by age: the periodic stale-submission sweep
(`repository.stale_submissions`, every minute) reads only those, and without it scanned every intent ever."""

from alembic import op

revision = "executor_0006"
down_revision = "executor_0005"
branch_labels = None
depends_on = None
SCHEMA = "executor"


def upgrade() -> None:
    op.create_index("intents_submitting_by_age", "intents", ["updated_at"], schema=SCHEMA,
                    postgresql_where="status = 'submitting'")


def downgrade() -> None:
    op.drop_index("intents_submitting_by_age", "intents", schema=SCHEMA)
