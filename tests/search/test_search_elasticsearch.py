"""Elasticsearch backend. The outbox half runs everywhere (it is plain SQL in the catalogue
database); everything that talks to Elasticsearch needs a real cluster at ELASTICSEARCH_URL and
is skipped otherwise (a mocked cluster would prove nothing)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from registry.database import Database
from search import SearchDocument, SearchQuery, Viewer
from search.elasticsearch_backend import (
    ElasticsearchBackend,
    check,
    drain_outbox,
    ensure_index,
    outbox_backlog,
    reindex,
    repair,
)

ES_URL = os.environ.get("ELASTICSEARCH_URL")
needs_es = pytest.mark.skipif(not ES_URL, reason="ELASTICSEARCH_URL is not set: no real "
                              "Elasticsearch to test against")


def doc(dataset_id: str, version: int = 1, **fields: object) -> SearchDocument:
    base = {
        "dataset_id": dataset_id, "slug": dataset_id, "version": version, "state": "published",
        "visibility": "public", "organization_id": "org", "organization_path": ["root", "org"],
        "publisher_names": ["交通运输部"], "title_zh": None, "title_en": None,
        "description_zh": None, "description_en": None, "keywords": [], "themes": [],
        "formats": ["csv"], "license": None, "sharing_type": None, "open_attribute": None,
        "update_cycle": None, "data_grade": None, "region": None, "issued": None,
        "modified": None,
    }
    base.update(fields)
    return base  # type: ignore[return-value]


class _Unreachable:
    """Stands in for a client only where no request may be made."""


def test_outbox_rows_commit_and_roll_back_with_the_catalogue_write(db: Database) -> None:
    backend = ElasticsearchBackend(_Unreachable())
    with pytest.raises(RuntimeError), db.write() as session:
        backend.index(session, [doc("a")])
        raise RuntimeError("abort")
    with db.read() as session:
        assert outbox_backlog(session) == 0
    with db.write() as session:
        backend.index(session, [doc("a"), doc("b", title_zh="公交线路")])
        backend.remove(session, ["c"])
    with db.read() as session:
        rows = session.execute(text(
            "SELECT dataset_id, op, version FROM search_outbox ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("a", "index", 1), ("b", "index", 1), ("c", "delete", 0)]


@pytest.fixture
def es_backend(db: Database) -> Iterator[ElasticsearchBackend]:
    from elasticsearch import Elasticsearch

    prefix = f"ndrtest{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(ES_URL)
    ensure_index(client, index_prefix=prefix)
    yield ElasticsearchBackend(client, index_prefix=prefix)
    client.indices.delete(index=f"{prefix}-datasets-*")
    client.indices.delete_index_template(name=f"{prefix}-datasets")


@needs_es
def test_drained_documents_are_searchable_with_facets(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    with db.write() as session:
        es_backend.index(session, [
            doc("a", title_zh="北京市交通运输局公交线路", formats=["CSV"]),
            doc("b", title_en="Bus routes", formats=["JSON"]),
            doc("g", title_zh="交通", visibility="government"),
        ])
    es_backend.wait_for_outbox(db.write)
    with db.read() as session:
        assert outbox_backlog(session) == 0
        result = es_backend.search(session, SearchQuery(q="交通", facets=["format"]))
        assert [h.dataset_id for h in result.hits] == ["a"]
        assert result.facets["format"] == [("CSV", 1)]
        assert es_backend.search(session, SearchQuery(
            q="交通", viewer=Viewer.government_user([]))).total == 2
        assert [h.dataset_id for h in es_backend.search(session, SearchQuery(q="rout")).hits] \
            == ["b"]


@needs_es
def test_check_finds_drift_and_repair_fixes_it(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    client, prefix = es_backend.client, es_backend.index_prefix
    truth = [doc("same"), doc("stale", version=2), doc("missing")]
    reindex(client, [doc("same"), doc("stale", version=1), doc("extra")], index_prefix=prefix)
    report = check(client, truth, index_prefix=prefix)
    assert (report.missing, report.stale, report.extra) == (["missing"], ["stale"], ["extra"])
    repair(client, truth, report, index_prefix=prefix)
    assert check(client, truth, index_prefix=prefix).clean


@needs_es
def test_reindex_swaps_the_alias(db: Database, es_backend: ElasticsearchBackend) -> None:
    client, prefix = es_backend.client, es_backend.index_prefix
    first = reindex(client, [doc("a", title_en="alpha")], index_prefix=prefix)
    second = reindex(client, [doc("b", title_en="beta")], index_prefix=prefix)
    assert list(client.indices.get_alias(name=f"{prefix}-datasets")) == [second]
    assert not client.indices.exists(index=first)
    with db.read() as session:
        assert [h.dataset_id for h in es_backend.search(session, SearchQuery(q="beta")).hits] \
            == ["b"]


def test_drain_is_a_no_op_on_an_empty_outbox(db: Database) -> None:
    assert drain_outbox(db.write, _Unreachable()) == 0
