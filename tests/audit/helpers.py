"""Shared set-up of the audit tests: a small catalogue of every kind of version, and a way to
flip one byte of any stored cell."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from tests.catalogue.helpers import metadata


@dataclass
class Catalogue:
    public: dict[str, Any]
    government: dict[str, Any]
    updated: dict[str, Any]
    withdrawn: dict[str, Any]
    draft: dict[str, Any]
    editor: dict[str, str]


def publish(registry, headers, **body) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = registry.client.post("/api/v1/datasets", json={"metadata": metadata(), **body},
                             headers=headers)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def build_catalogue(registry) -> Catalogue:  # type: ignore[no-untyped-def]
    """Public, government-only (v2 entry), updated, withdrawn and draft versions, all signed."""
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    public = publish(registry, editor)
    government = publish(registry, editor, visibility="government",
                         metadata=metadata(title={"zh": "内部", "en": "Internal"}))
    updated = publish(registry, editor, metadata=metadata(title={"zh": "路", "en": "Roads"}))
    r = registry.client.patch(f"/api/v1/datasets/{updated['id']}",
                              json={"metadata": {"keywords": ["路"]}}, headers=editor)
    assert r.status_code == 200, r.get_json()
    updated = r.get_json()
    withdrawn = publish(registry, editor, metadata=metadata(title={"zh": "旧", "en": "Old"}))
    r = registry.client.delete(f"/api/v1/datasets/{withdrawn['id']}", headers=editor)
    assert r.status_code == 200, r.get_json()
    withdrawn = r.get_json()
    draft = publish(registry, editor, state="draft",
                    metadata=metadata(title={"zh": "草稿", "en": "Draft"}))
    with registry.state.db.write() as session:
        registry.state.log.sign_checkpoint_if_grown(session)
    return Catalogue(public, government, updated, withdrawn, draft, editor)


def flip_byte(db, table: str, column: str, where: str, params: dict[str, Any],  # type: ignore[no-untyped-def]
              *, at: int | None = None) -> None:
    """Flip the lowest bit of one byte (the middle one by default) of one stored cell.

    Text stays valid UTF-8 (an ASCII character becomes its neighbour). `table`, `column` and
    `where` are fixed strings of the test, never input; values go as bound parameters."""
    with db.write() as session:
        value = session.execute(text(f"SELECT {column} FROM {table} WHERE {where}"),
                                params).scalar_one()
        is_text = isinstance(value, str)
        raw = bytearray(value.encode("utf-8") if is_text else bytes(value))
        position = len(raw) // 2 if at is None else at
        if is_text:
            while raw[position] >= 0x80 or raw[position] in b'"\\':
                position += 1  # stay on an ASCII character so the text stays UTF-8
        raw[position] ^= 0x01
        new = raw.decode("utf-8") if is_text else bytes(raw)
        session.execute(text(f"UPDATE {table} SET {column} = :new WHERE {where}"),
                        {**params, "new": new})
