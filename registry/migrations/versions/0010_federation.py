"""Federation: trusted members and what the hub witnessed; members' cosignatures.

Revision ID: 0010_federation
Revises: 0011_sessions_and_token_chain
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_federation"
down_revision = "0011_sessions_and_token_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_members",
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("verifier_key", sa.Text(), nullable=False),
        sa.Column("url", sa.String(500), nullable=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("poll_interval", sa.Float(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("witnessed_size", sa.BigInteger(), nullable=False),
        sa.Column("witnessed_root", sa.LargeBinary(32), nullable=True),
        sa.Column("witnessed_note", sa.Text(), nullable=True),
        sa.Column("witnessed_at", sa.DateTime(), nullable=True),
        sa.Column("alarm", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.Column("mirrored_size", sa.BigInteger(), nullable=False),
        sa.Column("mirrored_edge", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.String(64), nullable=True),
        sa.Column("key_history", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("origin", name="pk_federation_members"),
    )
    op.create_table(
        "witnessed_checkpoints",
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("cosignature", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("hub_leaf_index", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("origin", "size", name="pk_witnessed_checkpoints"),
    )
    op.create_table(
        "witness_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_witness_evidence"),
    )
    op.create_index("ix_witness_evidence_origin", "witness_evidence", ["origin"])
    op.create_table(
        "member_cosignatures",
        sa.Column("witness", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("witness", "size", name="pk_member_cosignatures"),
    )
    op.create_table(
        "federated_entries",
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("member_dataset_id", sa.String(64), nullable=False),
        sa.Column("member_organization", sa.String(64), nullable=True),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("inclusion_path", sa.Text(), nullable=False),
        sa.Column("mirrored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "version", name="pk_federated_entries"),
    )
    op.create_index("ix_federated_entries_origin", "federated_entries", ["origin"])
    op.create_table(
        "mirror_refusals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mirror_refusals"),
    )
    op.create_index("ix_mirror_refusals_origin", "mirror_refusals", ["origin"])
    op.create_table(
        "harvest_sources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.String(1000), nullable=False),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("interval", sa.Float(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_report", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_harvest_sources"),
    )


def downgrade() -> None:
    op.drop_table("harvest_sources")
    op.drop_index("ix_mirror_refusals_origin", table_name="mirror_refusals")
    op.drop_table("mirror_refusals")
    op.drop_index("ix_federated_entries_origin", table_name="federated_entries")
    op.drop_table("federated_entries")
    op.drop_table("member_cosignatures")
    op.drop_index("ix_witness_evidence_origin", table_name="witness_evidence")
    op.drop_table("witness_evidence")
    op.drop_table("witnessed_checkpoints")
    op.drop_table("federation_members")
