"""The web console's sessions: a cookie holds a random id; the server keeps who it is and its CSRF token."""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0009"
down_revision = "ledger_0008"
branch_labels = None
depends_on = None
SCHEMA = "ledger"


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        # The SHA-256 of the cookie's random id, so a copy of the table opens no session.
        sa.Column("session_key", sa.Text, primary_key=True),
        # A token's sessions go with it: a revoked or expired token is refused on every request as well.
        sa.Column("token_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.api_tokens.token_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("expires_at > created_at", name="console_sessions_expire_after_creation"),
        sa.CheckConstraint("length(csrf_token) >= 32", name="console_sessions_csrf_token_long"),
        schema=SCHEMA,
    )
    op.create_index("console_sessions_by_token", "console_sessions", ["token_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("console_sessions", schema=SCHEMA)
