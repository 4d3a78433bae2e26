"""The Tantivy engine fed from the change feed: freshness across processes, one leased writer,
crash recovery (a real kill -9), consumers with their own cursors, rebuilds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from registry.database import Database
from search import SearchQuery, Viewer, feed
from search.tantivy_engine import TantivyEngine
from tests.search.test_search_backends import blank

ROOT = Path(__file__).resolve().parents[2]
ALL = SearchQuery(limit=1, viewer=Viewer.government_user(["org"]), include_withdrawn=True)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def publish(db: Database, docs: list, removed: list[str] | None = None) -> None:  # type: ignore[type-arg]
    with db.write() as session:
        feed.publish(session, docs, removed or [])


def test_a_reader_process_sees_what_the_indexer_applied(db: Database, tmp_path: Path) -> None:
    """Two engines on one directory stand for two gunicorn workers: the one holding the lease
    indexes, the other only reloads — and a search there waits for the commit it must see."""
    indexer = TantivyEngine(tmp_path / "ix")
    indexer.attach(db.write)
    reader = TantivyEngine(tmp_path / "ix", freshness_wait=5.0)
    stop = threading.Event()
    loop = threading.Thread(target=indexer.run, args=(stop,), kwargs={"interval": 0.02})
    loop.start()
    try:
        publish(db, [blank("a", title_en="river gauges")])
        with db.read() as session:
            assert [h.dataset_id for h in reader.search(session, SearchQuery(q="river")).hits
                    ] == ["a"]
        publish(db, [blank("a", title_en="lake levels", version=2)])
        with db.read() as session:
            assert reader.search(session, SearchQuery(q="river")).total == 0
            assert reader.search(session, SearchQuery(q="lake")).total == 1
    finally:
        stop.set()
        loop.join(10)


def test_only_the_lease_holder_writes(db: Database, tmp_path: Path) -> None:
    first = TantivyEngine(tmp_path / "ix", lease_ttl=30.0)
    second = TantivyEngine(tmp_path / "ix", lease_ttl=30.0)
    first.attach(db.write)
    second.attach(db.write)
    publish(db, [blank(f"d{i}", title_en="x") for i in range(5)])
    assert first.index_step() == 5
    assert second.index_step() is None  # the lease is first's until it expires or is released
    first.release()
    publish(db, [blank("d9", title_en="x")])
    assert second.index_step() == 1
    with db.read() as session:
        assert second.count(session) == 6
        positions = feed.consumer_positions(session)
    assert positions == {second.consumer: feed_head(db)}
    second.release()


def feed_head(db: Database) -> int:
    with db.read() as session:
        return feed.head(session)


INDEXER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from registry.database import Database
    from search.tantivy_engine import TantivyEngine

    db = Database(sys.argv[2])
    engine = TantivyEngine(sys.argv[3], lease_ttl=1.0, batch=int(sys.argv[4]))
    engine.attach(db.write)
    print("ready", flush=True)
    while True:
        applied = engine.index_step()
        print("applied", applied, flush=True)
        if not applied:
            time.sleep(0.05)
""")


def test_kill_9_during_indexing_loses_nothing(db: Database, tmp_path: Path) -> None:
    """A real indexer process is killed (SIGKILL) while it works through a backlog; a fresh
    process replays the feed from the index's own position and every entry is there."""
    total = 3000
    for start in range(0, total, 500):
        publish(db, [blank(f"d{i:05d}", title_en=f"entry {i}", version=1 + i % 3)
                     for i in range(start, start + 500)])
    publish(db, [], [f"d{i:05d}" for i in range(0, total, 10)])  # some deletions at the end
    script = tmp_path / "indexer.py"
    script.write_text(INDEXER)
    index_dir = tmp_path / "ix"
    process = subprocess.Popen(
        [sys.executable, str(script), str(ROOT), db.url, str(index_dir), "100"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert process.stdout is not None
        batches = 0
        for line in process.stdout:
            if line.startswith("applied") and line.split()[1] not in ("0", "None"):
                batches += 1
                if batches == 8:  # mid-backlog: about 800 of 3300 rows applied
                    break
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    with db.read() as session:
        published = session.execute(text(
            "SELECT position FROM search_feed_consumer")).scalar_one()
    assert 0 < published < feed_head(db)  # it really died half-way
    recovered = TantivyEngine(index_dir, lease_ttl=1.0)
    recovered.attach(db.write)
    wait_for(lambda: recovered.index_step() is not None, timeout=10)  # the dead lease expires
    with db.read() as session:
        recovered.search(session, ALL)  # catches up with the whole feed
        versions = recovered.indexed_versions(session)
    expected = {f"d{i:05d}": 1 + i % 3 for i in range(total) if i % 10}
    assert versions == expected
    recovered.release()


def test_each_consumer_keeps_its_own_cursor_and_prune_waits_for_all(
    db: Database, tmp_path: Path
) -> None:
    """The feed is not a queue: two indexes (two hosts, or an index and a cluster being
    filled) each read every row; rows go only when both have passed them."""
    host_a = TantivyEngine(tmp_path / "a")
    host_b = TantivyEngine(tmp_path / "b")
    host_a.attach(db.write)
    host_b.attach(db.write)
    publish(db, [blank(f"d{i}", title_en="shared") for i in range(4)])
    with db.read() as session:
        assert host_a.search(session, SearchQuery(q="shared")).total == 4
    with db.write() as session:
        assert feed.consumer_positions(session)[host_b.consumer] == 0
        assert feed.prune(session) == 0  # host b has not read them yet
    with db.read() as session:
        assert host_b.search(session, SearchQuery(q="shared")).total == 4
    with db.write() as session:
        assert feed.prune(session) == 4
        assert feed.head(session) == 0
    host_a.release()
    host_b.release()


def test_a_new_index_is_filled_from_the_catalogue(db: Database, tmp_path: Path) -> None:
    """An index directory that is new (or was built under another field layout) starts from
    the catalogue, not from a feed that may have been pruned."""
    catalogue = [blank("old-1", title_en="archive"), blank("old-2", title_en="archive")]
    engine = TantivyEngine(tmp_path / "ix")
    engine.attach(db.write, lambda session: iter(catalogue))
    with db.read() as session:
        assert engine.search(session, SearchQuery(q="archive")).total == 2
    engine.release()
    marker = tmp_path / "ix" / "ndr-index.json"
    meta = json.loads(marker.read_text())
    meta["layout"]["version"] = -1  # as if built by another release
    marker.write_text(json.dumps(meta))
    catalogue.append(blank("old-3", title_en="archive"))
    rebuilt = TantivyEngine(tmp_path / "ix")
    assert rebuilt.consumer != engine.consumer
    rebuilt.attach(db.write, lambda session: iter(catalogue))
    with db.read() as session:
        assert rebuilt.search(session, SearchQuery(q="archive")).total == 3
    rebuilt.release()


def test_a_search_inside_a_write_transaction_does_not_wait_for_itself(
    db: Database, tmp_path: Path
) -> None:
    engine = TantivyEngine(tmp_path / "ix", freshness_wait=30.0)
    engine.attach(db.write)
    started = time.monotonic()
    with db.write() as session:
        engine.index(session, [blank("x", title_en="pending")])
        assert engine.search(session, SearchQuery(q="pending")).total == 0
    assert time.monotonic() - started < 10  # neither a deadlock nor the 30 s freshness wait
    with db.read() as session:
        assert engine.search(session, SearchQuery(q="pending")).total == 1
    engine.release()


def test_an_empty_index_with_nothing_to_fill_it_from_does_not_wait(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No catalogue source and an empty feed: there is nothing to wait for, so a search
    answers at once instead of sleeping through its freshness limit."""
    engine = TantivyEngine(tmp_path / "ix", freshness_wait=30.0)
    engine.attach(db.write)
    sleeps: list[float] = []
    monkeypatch.setattr("search.tantivy_engine.time.sleep", sleeps.append)
    with db.read() as session:
        assert engine.search(session, SearchQuery(q="anything")).total == 0
    assert sleeps == []
    engine.release()


@pytest.mark.parametrize("payload", ["{", '{"dataset_id": 1}', "null", None])
def test_a_corrupt_feed_row_is_skipped_not_fatal(
    db: Database, tmp_path: Path, payload: str | None
) -> None:
    """A row nobody can apply (only corruption makes one) must not stop search for good: it is
    skipped and logged, the rows after it are applied, and `check` reports the gap."""
    engine = TantivyEngine(tmp_path / "ix", freshness_wait=0.2)
    engine.attach(db.write)
    with db.write() as session:
        session.execute(text("INSERT INTO search_outbox (dataset_id, op, version, payload) "
                             "VALUES ('bad', 'index', 1, :p)"), {"p": payload})
    publish(db, [blank("good", title_en="fine")])
    with db.read() as session:
        assert [h.dataset_id for h in engine.search(session, SearchQuery(q="fine")).hits
                ] == ["good"]
        assert set(engine.indexed_versions(session)) == {"good"}
    engine.release()


def _indexer_and_reader(db: Database, tmp_path: Path, *, max_lag: float
                        ) -> tuple[TantivyEngine, TantivyEngine]:
    """Two processes' engines on one index: the indexer holds the feed lease (it has applied
    one entry, "bus routes"), so the reader never indexes and searches with the lag."""
    indexer = TantivyEngine(tmp_path / "ix", max_lag=max_lag)
    indexer.attach(db.write, read_sessions=db.read)
    reader = TantivyEngine(tmp_path / "ix", freshness_wait=2.0, max_lag=max_lag)
    reader.attach(db.write, read_sessions=db.read)
    publish(db, [blank("old", title_en="bus routes")])
    assert indexer.index_step() == 1  # takes the lease; the reader now never indexes
    return indexer, reader


def test_a_worker_that_does_not_index_waits_only_for_changes_older_than_the_lag(
    db: Database, tmp_path: Path
) -> None:
    """NDR_SEARCH_MAX_LAG_MS: in a worker without the feed lease, a search does not wait for a
    change younger than the lag (under a stream of publishes it would wait on every indexer
    commit), but once the change is older and still not indexed it waits as before; the
    worker holding the lease always shows every committed change."""
    indexer, reader = _indexer_and_reader(db, tmp_path, max_lag=0.3)
    with db.read() as session:  # a busy worker: it has read the feed head within the lag
        assert reader.search(session, SearchQuery(q="tide")).total == 0
    publish(db, [blank("young", title_en="tide tables")])
    started = time.monotonic()
    with db.read() as session:
        assert reader.search(session, SearchQuery(q="tide")).total == 0
    assert time.monotonic() - started < 1.0  # did not wait out freshness_wait
    time.sleep(0.35)  # the change is now older than the lag, and nobody has indexed it
    started = time.monotonic()
    with db.read() as session:
        assert reader.search(session, SearchQuery(q="tide")).total == 0
    assert time.monotonic() - started >= 2.0  # it waited for the indexer, up to the limit
    with db.read() as session:  # the lease holder applies what it lacks before it answers
        assert indexer.search(session, SearchQuery(q="tide")).total == 1
        assert reader.search(session, SearchQuery(q="tide")).total == 1
    indexer.release()


def test_a_worker_that_has_not_searched_within_the_lag_shows_every_older_change(
    db: Database, tmp_path: Path
) -> None:
    """The lag bounds staleness in time. A worker last asked long ago must not answer from the
    feed head it saw then: every change committed more than the lag ago is found (CI once saw
    a gunicorn worker miss an entry published seconds earlier)."""
    indexer, reader = _indexer_and_reader(db, tmp_path, max_lag=0.3)
    with db.read() as session:
        assert reader.search(session, SearchQuery(q="harbour")).total == 0
    publish(db, [blank("gauges", title_en="harbour gauges")])
    with db.read() as session:  # indexed and committed by the lease holder
        assert indexer.search(session, SearchQuery(q="harbour")).total == 1
    time.sleep(0.35)  # the reader's last look at the feed is now older than the lag
    with db.read() as session:
        assert reader.search(session, SearchQuery(q="harbour")).total == 1
    indexer.release()


def test_a_busy_worker_reads_the_feed_head_once_per_half_lag(db: Database, tmp_path: Path
                                                             ) -> None:
    """A head read less than half the lag ago already covers every change older than the
    lag, so a worker beside the indexer reads it at most once per half lag: under load that
    read was an eighth of a search's CPU. Once half the lag has passed it reads it again, and
    a change older than the lag is then found (the two tests above hold that part)."""
    from sqlalchemy import event

    indexer, reader = _indexer_and_reader(db, tmp_path, max_lag=2.0)
    head_reads: list[float] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "max(id)" in statement and "search_outbox" in statement:
            head_reads.append(time.monotonic())

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.read() as session:
            for _ in range(5):
                assert reader.search(session, SearchQuery(q="bus")).total == 1
        assert len(head_reads) == 1
        time.sleep(max(0.0, head_reads[0] + 1.0 - time.monotonic()))  # half the lag
        with db.read() as session:
            assert reader.search(session, SearchQuery(q="bus")).total == 1
        assert len(head_reads) == 2
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    indexer.release()


def test_a_process_that_finds_the_lease_free_reads_its_own_writes(db: Database, tmp_path: Path
                                                                  ) -> None:
    """The lag is for workers beside another indexer. A process that finds the lease free (a
    one-process server, an `ndr` command, or one that just released it) catches the index up
    before it answers, however long the lag."""
    engine = TantivyEngine(tmp_path / "ix", max_lag=3600)
    engine.attach(db.write, read_sessions=db.read)
    publish(db, [blank("older", title_en="river gauges")])
    assert engine.index_step() == 1  # an index at a position, holding the lease
    engine.release()  # as before an outside writer (`ndr search check`, tests/catalogue)
    publish(db, [blank("fresh", title_en="harbour tides")])
    with db.read() as session:
        assert engine.search(session, SearchQuery(q="harbour")).total == 1
    engine.release()
