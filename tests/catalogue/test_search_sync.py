"""`ndr search check` finds drift between the catalogue and its index; --repair removes it."""

from __future__ import annotations

from registry.datasets import search_sync
from tests.catalogue.helpers import metadata


def _break_tantivy_index(state, stale_id: str, missing_id: str) -> None:  # type: ignore[no-untyped-def]
    """Change the Tantivy index behind the catalogue's back, as a crashed or buggy indexer
    would: drop one entry, and put an older version number on another."""
    import tantivy

    engine = state.search
    engine.release()  # frees the index writer lock for this outside writer
    index = tantivy.Index(engine.schema, path=str(engine.path))
    index.register_tokenizer(
        "ws", tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
    with state.db.read() as session:
        stale = next(search_sync.documents(session, [stale_id]))
    writer = index.writer(50_000_000, 1)
    writer.delete_documents_by_term("id", missing_id)
    writer.delete_documents_by_term("id", stale_id)
    writer.add_document(engine.document({**stale, "version": 1}))
    writer.commit()
    del writer
    engine.reload()


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
    assert state.search.name == "tantivy"  # the default engine
    with state.db.read() as session:
        assert search_sync.drift(session, state.search).clean
    _break_tantivy_index(state, ids[1], ids[2])
    with state.db.read() as session:
        report = search_sync.drift(session, state.search)
    assert (report.missing, report.stale, report.extra) == ([ids[2]], [ids[1]], [])
    with state.db.write() as session:
        assert search_sync.repair(session, state.search, report) == 2
    with state.db.read() as session:
        assert search_sync.drift(session, state.search).clean
    found = registry.client.get("/api/v1/datasets?q=changed").get_json()
    assert [item["slug"] for item in found["items"]] == ["s1"]
    assert search_sync.reindex(None, state.search) == 5
    with state.db.read() as session:
        assert search_sync.drift(session, state.search).clean


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
