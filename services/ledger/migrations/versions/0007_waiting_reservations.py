"""Reservations waiting behind an order in flight on their bot's symbol, in arrival order (ledger.domain.must_wait)."""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0007"
down_revision = "ledger_0006"
branch_labels = None
depends_on = None
SCHEMA = "ledger"


def upgrade() -> None:
    op.create_table(
        "waiting_reservations",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("intent_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("bot_id", sa.Uuid, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("command", sa.LargeBinary, nullable=False),  # the ReserveBudget as it arrived
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("waiting_reservations_by_bot", "waiting_reservations", ["bot_id", "symbol", "seq"], schema=SCHEMA)
    op.create_index("waiting_reservations_by_age", "waiting_reservations", ["waiting_since"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("waiting_reservations", schema=SCHEMA)
