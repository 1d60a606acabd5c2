"""API tokens: a read-only `viewer` role, an expiry and the last use; an audit row for every management write."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "ledger_0008"
down_revision = "ledger_0007"
branch_labels = None
depends_on = None
SCHEMA = "ledger"
ROLES = "('admin', 'user', 'viewer')"
ACTIONS = "('bot.create', 'bot.update', 'bot.pause', 'bot.resume', 'bot.delete', 'token.create', 'token.revoke')"


def _roles(roles: str) -> None:
    op.drop_constraint("api_tokens_role_known", "api_tokens", schema=SCHEMA, type_="check")
    op.create_check_constraint("api_tokens_role_known", "api_tokens", f"role IN {roles}", schema=SCHEMA)


def upgrade() -> None:
    _roles(ROLES)
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    op.create_check_constraint("api_tokens_expires_after_creation", "api_tokens",
                               "expires_at IS NULL OR expires_at > created_at", schema=SCHEMA)
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # Who: the token that made the change; the command line (database access, no token) has none.
        sa.Column("actor_token_id", sa.Uuid, nullable=True),
        sa.Column("actor_name", sa.Text, nullable=False),
        sa.Column("actor_role", sa.Text, nullable=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("bot_id", sa.Uuid, nullable=True),
        sa.Column("token_id", sa.Uuid, nullable=True),  # the token created or revoked
        sa.Column("before", JSONB, nullable=True),
        sa.Column("after", JSONB, nullable=True),
        sa.CheckConstraint(f"action IN {ACTIONS}", name="audit_log_action_known"),
        sa.CheckConstraint("(actor_token_id IS NULL) = (actor_role IS NULL)", name="audit_log_actor_role_with_token"),
        sa.CheckConstraint("(action LIKE 'bot.%') = (bot_id IS NOT NULL) AND (action LIKE 'token.%') = "
                           "(token_id IS NOT NULL)", name="audit_log_subject_of_action"),
        schema=SCHEMA,
    )
    op.create_index("audit_log_by_bot", "audit_log", ["bot_id", "audit_id"], schema=SCHEMA,
                    postgresql_where=sa.text("bot_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_table("audit_log", schema=SCHEMA)
    # The older schema cannot expire a token: one that carries an expiry is revoked instead of living forever.
    op.execute(f"UPDATE {SCHEMA}.api_tokens SET revoked_at = LEAST(expires_at, now()) "
               "WHERE expires_at IS NOT NULL AND revoked_at IS NULL")
    op.drop_constraint("api_tokens_expires_after_creation", "api_tokens", schema=SCHEMA, type_="check")
    op.drop_column("api_tokens", "last_used_at", schema=SCHEMA)
    op.drop_column("api_tokens", "expires_at", schema=SCHEMA)
    # The older schema has no read-only role: its tokens go, rather than come back as something they were not.
    op.execute(f"DELETE FROM {SCHEMA}.api_tokens WHERE role = 'viewer'")
    _roles("('admin', 'user')")
