"""The publish sequencer: concurrent API writes recorded in batches, each item judged alone.

Real threads against a real database (SQLite file and PostgreSQL): one bad item in a batch never
fails the others, items of one batch that collide (the same slug, dataset or Idempotency-Key)
are judged one after the other as if unbatched, leaf indexes stay consecutive and gap-free,
and no client has an answer before its batch committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.catalogue.helpers import metadata


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls from separate threads released at once, so they land in one batch."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture(params=["worker", "sequencer-process"])
def publisher(request, registry, tmp_path):  # type: ignore[no-untyped-def]
    """Every test twice: the worker's own batches, and the sequencer process's (here a
    SequencerServer on a real Unix socket; the API reaches it as a worker does)."""
    assert registry.state.sequencer is not None, "batching is on by default"
    registry.state.sequencer.linger = 0.05  # wide window: the threads below share batches
    if request.param == "sequencer-process":
        from registry.datasets.sequencer import PublishSequencer, sqlite_lock_file
        from registry.datasets.sequencer_socket import RemoteSequencer, SequencerServer

        state = registry.state
        remote = PublishSequencer(state.db, state.services, linger=0.05,
                                  lock_file=sqlite_lock_file(state.db))
        server = SequencerServer(remote, tmp_path / "sequencer.sock", b"k" * 32)
        server.start()
        request.addfinalizer(server.stop)
        state.sequencer = remote  # the counters the tests read are the sequencer process's
        state.remote_sequencer = RemoteSequencer(tmp_path / "sequencer.sock", b"k" * 32)
    registry.org("mot")
    registry.org("moe")
    return registry, registry.auth(registry.token("mot"))


def _post(registry, headers: dict, body: dict, **extra: str):  # type: ignore[no-untyped-def]
    client = registry.app.test_client()
    return client.post("/api/v1/datasets", json=body, headers={**headers, **extra})


def test_a_bad_item_does_not_fail_its_batch(publisher) -> None:  # type: ignore[no-untyped-def]
    registry, headers = publisher
    first = _post(registry, headers, {"metadata": metadata(), "slug": "taken-slug",
                                      "external_id": "ext-1"})
    assert first.status_code == 201
    sequencer = registry.state.sequencer
    batches_before = sequencer.batches
    bodies = [{"metadata": metadata(title={"zh": f"数据{i}", "en": f"data {i}"})}
              for i in range(6)]
    bodies[2] = {"metadata": metadata(), "slug": "taken-slug"}          # conflict: 409
    bodies[4] = {"metadata": metadata(), "external_id": "ext-1"}        # conflict: 409
    responses = _together([lambda b=b: _post(registry, headers, b) for b in bodies])
    statuses = [r.status_code for r in responses]
    assert statuses[2] == 409 and statuses[4] == 409
    good = [r.get_json() for i, r in enumerate(responses) if i not in (2, 4)]
    assert all(r.status_code == 201 for i, r in enumerate(responses) if i not in (2, 4))
    indexes = sorted(g["log"]["index"] for g in good)
    assert indexes == list(range(indexes[0], indexes[0] + len(good)))  # consecutive leaves
    assert sequencer.batches - batches_before < len(good), "the writes were not batched"
    with registry.state.db.read() as session:
        assert registry.state.log.size(session) == 1 + len(good)  # nothing of the bad ones


def test_an_invalid_body_is_refused_before_it_is_queued(publisher) -> None:  # type: ignore[no-untyped-def]
    registry, headers = publisher
    sequencer = registry.state.sequencer
    before = sequencer.batches
    response = _post(registry, headers, {"metadata": {"title": 5}})
    assert response.status_code in (400, 422)
    assert sequencer.batches == before


def test_the_same_generated_slug_twice_in_one_batch(publisher) -> None:  # type: ignore[no-untyped-def]
    registry, headers = publisher
    same = {"metadata": metadata(title={"zh": "同名", "en": "Same title"})}
    responses = _together([lambda: _post(registry, headers, same) for _ in range(4)])
    assert [r.status_code for r in responses] == [201] * 4
    slugs = {r.get_json()["slug"] for r in responses}
    assert len(slugs) == 4 and "same-title" in slugs


def test_a_batch_looks_its_slugs_up_once_and_still_avoids_the_taken_ones(publisher) -> None:  # type: ignore[no-untyped-def]
    """Under the write lock every round trip counts (PostgreSQL): the slugs a batch's items
    want are looked up in one query, not one per item, and a slug already in the database,
    wanted explicitly or generated from a title, is still never given twice."""
    from sqlalchemy import event

    registry, headers = publisher
    assert _post(registry, headers, {"metadata": metadata(title={"zh": "旧", "en": "Old name"}),
                                     "slug": "old-name"}).status_code == 201
    sequencer = registry.state.sequencer
    lookups: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT datasets.slug"):
            lookups.append(statement)

    event.listen(registry.state.db.engine, "before_cursor_execute", count)
    try:
        batches = sequencer.batches
        bodies = [{"metadata": metadata(title={"zh": f"新{i}", "en": f"Fresh {i}"})}
                  for i in range(5)]
        bodies.append({"metadata": metadata(title={"zh": "旧", "en": "Old name"})})
        bodies.append({"metadata": metadata(), "slug": "old-name"})
        responses = _together([lambda b=b: _post(registry, headers, b) for b in bodies])
    finally:
        event.remove(registry.state.db.engine, "before_cursor_execute", count)
    assert [r.status_code for r in responses] == [201] * 6 + [409]
    assert responses[-1].get_json()["errors"][0]["pointer"] == "/slug"
    assert responses[5].get_json()["slug"].startswith("old-name-")  # taken: suffixed
    assert len(lookups) <= sequencer.batches - batches < len(bodies)


def test_the_same_idempotency_key_in_one_batch_records_once(publisher) -> None:  # type: ignore[no-untyped-def]
    registry, headers = publisher
    body = {"metadata": metadata(title={"zh": "幂等", "en": "Idempotent"})}
    responses = _together([lambda: _post(registry, headers, body, **{"Idempotency-Key": "k-1"})
                           for _ in range(4)])
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotency-Replayed") == "true" for r in responses) == 3
    other = _post(registry, headers, {"metadata": metadata()}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422


def test_if_match_in_one_batch_lets_exactly_one_patch_through(publisher) -> None:  # type: ignore[no-untyped-def]
    registry, headers = publisher
    created = _post(registry, headers, {"metadata": metadata()}).get_json()
    client = registry.app.test_client

    def patch(i: int):  # type: ignore[no-untyped-def]
        return client().patch(f"/api/v1/datasets/{created['id']}", json={
            "metadata": {"keywords": [f"k{i}"]}}, headers={**headers, "If-Match": '"v1"'})

    responses = _together([lambda i=i: patch(i) for i in range(4)])
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]
    latest = registry.client.get(f"/api/v1/datasets/{created['id']}", headers=headers)
    assert latest.get_json()["version"] == 2


def test_gap_free_indexes_under_concurrent_publishing(publisher) -> None:  # type: ignore[no-untyped-def]
    from anchoring.log_store import LogEntry
    from registry.datasets.models import DatasetVersion

    registry, headers = publisher
    answers: list[dict] = []
    lock = threading.Lock()

    def publish(worker: int) -> None:
        for n in range(6):
            response = _post(registry, headers, {"metadata": metadata(
                title={"zh": f"并发{worker}-{n}", "en": f"concurrent {worker} {n}"})})
            assert response.status_code == 201, response.get_json()
            with lock:
                answers.append(response.get_json())

    threads = [threading.Thread(target=publish, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 36
    with registry.state.db.read() as session:
        entries = {row.idx: bytes(row.entry) for row in session.scalars(select(LogEntry))}
        leaves = dict(session.execute(select(DatasetVersion.dataset_id,
                                             DatasetVersion.leaf_index)).all())
    assert sorted(entries) == list(range(36))
    for answer in answers:
        assert entries[answer["log"]["index"]] == answer["log"]["entry"].encode()
        assert leaves[answer["id"]] == answer["log"]["index"]
        assert answer["log"]["receipt"]


def test_the_unbatched_path_gives_the_same_answers(registry, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """NDR_PUBLISH_BATCH=0 (the old path) is still served, and answers alike."""
    registry.state.sequencer = None
    registry.org("mot")
    headers = registry.auth(registry.token("mot"))
    first = _post(registry, headers, {"metadata": metadata()}, **{"Idempotency-Key": "once"})
    again = _post(registry, headers, {"metadata": metadata()}, **{"Idempotency-Key": "once"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotency-Replayed"] == "true"
    assert first.get_json()["id"] == again.get_json()["id"]
    assert first.headers["Location"] == again.headers["Location"]


def test_a_failure_while_recording_the_batch_retries_each_item_alone(publisher, caplog) -> None:  # type: ignore[no-untyped-def]
    """Should recording the whole batch fail (here: one item's answer cannot be made), the
    batch is rolled back and every item is recorded alone: only the faulty one fails."""
    from registry.auth.principal import Principal
    from registry.datasets import actions
    from registry.organizations.models import Role

    registry, _ = publisher
    sequencer = registry.state.sequencer
    editor = Principal(id="test:editor", organization_id="mot", role=Role.EDITOR)

    def work(i: int) -> actions.PlanWork:
        prepared = actions.prepare_create(editor, {"metadata": metadata(
            title={"zh": f"回退{i}", "en": f"fallback {i}"})})

        def render(recorded: actions.Recorded) -> actions.Answer:
            if i == 1:
                raise RuntimeError("this answer cannot be made")
            return actions.Answer(201, {"index": recorded.version.leaf_index}, {})

        return lambda session, claims: actions.create_plan(session, prepared, None, render,
                                                           claims)

    def submit(i: int):  # type: ignore[no-untyped-def]
        try:
            return sequencer.submit(work(i))
        except RuntimeError as exc:
            return exc

    with caplog.at_level("WARNING", logger="registry.datasets.sequencer"):
        results = _together([lambda i=i: submit(i) for i in range(4)])
    assert "recording its items one by one" in caplog.text  # the batch failed as a whole
    assert isinstance(results[1], RuntimeError)
    indexes = sorted(r.body["index"] for i, r in enumerate(results) if i != 1)
    assert indexes == [0, 1, 2]  # nothing of the failed batch attempt, nothing of item 1
    with registry.state.db.read() as session:
        assert registry.state.log.size(session) == 3


def test_a_write_after_shutdown_is_refused_not_lost(publisher) -> None:  # type: ignore[no-untyped-def]
    registry, headers = publisher
    registry.state.sequencer.stop()
    response = _post(registry, headers, {"metadata": metadata()})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    with registry.state.db.read() as session:
        assert registry.state.log.size(session) == 0
