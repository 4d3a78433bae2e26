"""Server-side portal sessions, sign-in failure counts, and who minted each API token.

- `user_sessions`: a session is valid only while its row exists (sign-out and a password change
  delete it), so a copied cookie dies with the session (F7).
- `signin_failures`: consecutive failures per account, for the lockout (F4).
- `api_tokens.minted_by`: the token that minted a token; revocation cascades along it (F15).
  Tokens that never expire are given the documented maximum lifetime from now.

Revision ID: 0011_sessions_and_token_chain
Revises: 0008_one_entry_copy
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0011_sessions_and_token_chain"
down_revision = "0008_one_entry_copy"
branch_labels = None
depends_on = None

MAX_TOKEN_DAYS = 365  # registry.auth.tokens.MAX_EXPIRES_DAYS at the time of this migration


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id_sha256", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_table(
        "signin_failures",
        sa.Column("account", sa.String(300), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
    )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("minted_by", sa.String(16), nullable=True))
        batch.create_index("ix_api_tokens_minted_by", ["minted_by"])
    cap = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=MAX_TOKEN_DAYS)
    op.get_bind().execute(sa.text("UPDATE api_tokens SET expires_at = :cap "
                                  "WHERE expires_at IS NULL AND revoked_at IS NULL"),
                          {"cap": cap})


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_minted_by")
        batch.drop_column("minted_by")
    op.drop_table("signin_failures")
    op.drop_index("ix_user_sessions_user_id", "user_sessions")
    op.drop_table("user_sessions")
