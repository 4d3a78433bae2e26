"""F18: the search warm-up builds its snapshot from one consistent read, even while other
transactions keep adding documents (on PostgreSQL each statement used to see newer rows)."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from registry.bootstrap import warm_up_search
from tests.publish.test_thread_races import _doc


def test_warm_up_under_write_load_builds_a_consistent_snapshot(registry) -> None:  # type: ignore[no-untyped-def]
    state = registry.state
    columnar = state.search.columnar
    with state.db.write() as session:
        state.search.index(session, [_doc(i) for i in range(200)])
    stop = threading.Event()
    written = [200]

    def write() -> None:
        while not stop.is_set():
            n = written[0]
            with state.db.write() as session:
                state.search.index(session, [_doc(i) for i in range(n, n + 20)])
            written[0] = n + 20

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(15):
            columnar._snapshot = None
            warm_up_search(state)
            snapshot = columnar._snapshot
            assert snapshot is not None, "the warm-up failed to build the snapshot"
            # Every document and facet row it read belongs to the one snapshot it recorded.
            assert int(snapshot.state.astype(bool).sum()) == snapshot.size - 1
    finally:
        stop.set()
        writer.join(30)
    with Session(state.db.engine) as session:
        columnar.rebuild(session)
        assert columnar._snapshot.size - 1 == written[0]
