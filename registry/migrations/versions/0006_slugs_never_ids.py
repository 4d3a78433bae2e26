"""Slugs never look like dataset ids: rename any id-shaped slug a former release let in (F1).

Lookups now go by id first, so such a slug could no longer take over another dataset's URL,
but its own dataset would be unreachable by that slug; it gets the prefix ``dataset-``.

Revision ID: 0006_slugs_never_ids
Revises: 0005_search_changes
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0006_slugs_never_ids"
down_revision = "0005_search_changes"
branch_labels = None
depends_on = None

_ID_SHAPE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                       r"[0-9a-fA-F]{12}$")


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, slug FROM datasets WHERE length(slug) = 36")).all()
    for dataset_id, slug in rows:
        if _ID_SHAPE.match(slug):
            bind.execute(sa.text("UPDATE datasets SET slug = :new WHERE id = :id"),
                         {"new": f"dataset-{slug.lower()}", "id": dataset_id})


def downgrade() -> None:
    """Nothing to undo: the renamed slugs are valid in the old release too."""
