"""The catalogue: organisations, users, memberships, API tokens, datasets and their versions.

Revision ID: 0001_catalogue
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_catalogue"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name_zh", sa.String(300)),
        sa.Column("name_en", sa.String(300)),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("parent_id", sa.String(64),
                  sa.ForeignKey("organizations.id", ondelete="RESTRICT",
                                name="fk_organizations_parent_id_organizations")),
        sa.Column("region_code", sa.String(12)),
        sa.Column("description", sa.Text()),
        sa.Column("homepage", sa.String(500)),
        sa.Column("email", sa.String(300)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_organizations_parent_id", "organizations", ["parent_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(300), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(300)),
        sa.Column("is_operator", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("organization_id", sa.String(64),
                  sa.ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_memberships_organization_id", "memberships", ["organization_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("organization_id", sa.String(64),
                  sa.ForeignKey("organizations.id", ondelete="CASCADE")),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_index("ix_api_tokens_organization_id", "api_tokens", ["organization_id"])
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("slug", sa.String(120), nullable=False, unique=True),
        sa.Column("organization_id", sa.String(64),
                  sa.ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("external_id", sa.String(500)),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("visibility", sa.String(12), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("released_version", sa.Integer()),
        sa.Column("released_state", sa.String(12)),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("modified_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "external_id", name="uq_datasets_org_external"),
    )
    op.create_index("ix_datasets_organization_id", "datasets", ["organization_id"])
    op.create_index("ix_datasets_modified", "datasets", ["modified_at"])
    op.create_table(
        "dataset_versions",
        sa.Column("dataset_id", sa.String(36),
                  sa.ForeignKey("datasets.id", ondelete="RESTRICT"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("change", sa.String(24), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("visibility", sa.String(12), nullable=False),
        sa.Column("slug", sa.String(120), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("metadata_sha256", sa.String(64), nullable=False),
        sa.Column("log_entry", sa.Text()),
        sa.Column("leaf_index", sa.BigInteger(), unique=True),
        sa.Column("receipt", sa.Text()),
        sa.Column("note", sa.Text()),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("principal", sa.String(80), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("location", sa.String(500)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("idempotency_records", "dataset_versions", "datasets", "api_tokens",
                  "memberships", "users", "organizations"):
        op.drop_table(table)
