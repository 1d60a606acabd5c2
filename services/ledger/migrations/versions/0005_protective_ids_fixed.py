"""A position's take-profit and stop-loss order ids, once recorded, never change: the second place
this invariant lives (the first is `domain.record_protective_orders`). A CHECK sees only the new row,
so a trigger compares it with the old one."""

from alembic import op

revision = "ledger_0005"
down_revision = "ledger_0004"
branch_labels = None
depends_on = None
SCHEMA = "ledger"


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.protective_ids_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (OLD.tp_order_id IS NOT NULL AND NEW.tp_order_id IS DISTINCT FROM OLD.tp_order_id)
               OR (OLD.sl_order_id IS NOT NULL AND NEW.sl_order_id IS DISTINCT FROM OLD.sl_order_id) THEN
                RAISE EXCEPTION 'position %: recorded take-profit/stop-loss order ids never change', OLD.position_id
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$
    """)
    op.execute(f"""
        CREATE TRIGGER positions_protective_ids_fixed BEFORE UPDATE OF tp_order_id, sl_order_id
        ON {SCHEMA}.positions FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.protective_ids_fixed()
    """)


def downgrade() -> None:
    op.execute(f"DROP TRIGGER positions_protective_ids_fixed ON {SCHEMA}.positions")
    op.execute(f"DROP FUNCTION {SCHEMA}.protective_ids_fixed()")
