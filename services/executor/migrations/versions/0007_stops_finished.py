"""Stop orders can be `finished`: the venue said the algo order ended (FINISHED, CANCELED, REJECTED or
EXPIRED; the venue's word is kept in `detail`). A user data stream that starts afresh looks up every stop
not known to be finished, so without this state that set would only grow; the partial index is what
that look-up reads."""

from alembic import op

revision = "executor_0007"
down_revision = "executor_0006"
branch_labels = None
depends_on = None
SCHEMA = "executor"
UNFINISHED = "status IN ('placing', 'placed', 'unknown')"


def upgrade() -> None:
    op.drop_constraint("stop_orders_status_known", "stop_orders", schema=SCHEMA)
    op.create_check_constraint("stop_orders_status_known", "stop_orders",
                               "status IN ('placing', 'placed', 'rejected', 'unknown', 'finished')", schema=SCHEMA)
    op.create_index("stop_orders_unfinished", "stop_orders", ["intent_id"], schema=SCHEMA, postgresql_where=UNFINISHED)


def downgrade() -> None:
    op.drop_index("stop_orders_unfinished", "stop_orders", schema=SCHEMA)
    op.execute(f"UPDATE {SCHEMA}.stop_orders SET status = CASE WHEN algo_id IS NULL THEN 'unknown' ELSE 'placed' END "
               "WHERE status = 'finished'")
    op.drop_constraint("stop_orders_status_known", "stop_orders", schema=SCHEMA)
    op.create_check_constraint("stop_orders_status_known", "stop_orders",
                               "status IN ('placing', 'placed', 'rejected', 'unknown')", schema=SCHEMA)
