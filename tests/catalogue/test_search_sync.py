"""`ndr search check` finds drift between the catalogue and its index; --repair removes it."""

from __future__ import annotations

from sqlalchemy import text

from registry.datasets import search_sync
from tests.catalogue.helpers import metadata


def test_drift_is_found_and_repaired(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    ids = []
    for i in range(5):
        r = registry.client.post("/api/v1/datasets", headers=editor,
                                 json={"slug": f"s{i}", "metadata": metadata()})
        ids.append(r.get_json()["id"])
    registry.client.patch("/api/v1/datasets/s1", headers=editor,
                          json={"metadata": {"keywords": ["changed"]}})
    state = registry.state
    with state.db.read() as session:
        assert search_sync.sql_drift(session, state.search).clean
    # Break the index behind the catalogue's back, as a crashed external indexer would.
    with state.db.write() as session:
        session.execute(text("UPDATE search_document SET version = 1 WHERE dataset_id = :d"),
                        {"d": ids[1]})
        state.search.remove(session, [ids[2]])
    with state.db.read() as session:
        drift = search_sync.sql_drift(session, state.search)
    assert (drift.missing, drift.stale, drift.extra) == ([ids[2]], [ids[1]], [])
    with state.db.write() as session:
        assert search_sync.sql_repair(session, state.search, drift) == 2
    with state.db.read() as session:
        assert search_sync.sql_drift(session, state.search).clean
    found = registry.client.get("/api/v1/datasets?q=changed").get_json()
    assert [item["slug"] for item in found["items"]] == ["s1"]
    with state.db.write() as session:
        assert search_sync.sql_reindex(session, state.search) == 5
    with state.db.read() as session:
        assert search_sync.sql_drift(session, state.search).clean


def test_pre_analysed_text_equals_what_the_writer_would_compute() -> None:
    from registry.datasets.search_documents import pre_analysed
    from search.sql_backend import analyse_document

    md = metadata(title={"zh": "北京市公交线路客流量", "en": "Bus ridership, Beijing"},
                  description={"zh": "按线路统计。", "en": "Counted per route; monthly."},
                  keywords=["交通", "bus routes"], themes=["TRAN"])
    doc = {"title_zh": md["title"]["zh"], "title_en": md["title"]["en"],
           "description_zh": md["description"]["zh"], "description_en": md["description"]["en"],
           "keywords": md["keywords"], "themes": md["themes"], "publisher_names": ["交通运输部"]}
    computed_by_writer = analyse_document(doc)  # type: ignore[arg-type]
    computed_ahead = analyse_document({**doc, "analysed": pre_analysed(md)})  # type: ignore[typeddict-item]
    assert computed_ahead == computed_by_writer
    assert "交通" in computed_by_writer.keywords.split()
