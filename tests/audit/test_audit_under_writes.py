"""No false alarm: the self-audit runs flat out while publishers write and the checkpoint loop
signs (on PostgreSQL each statement sees the newest commits, the race to get right)."""

from __future__ import annotations

import threading

from anchoring.checkpointer import CheckpointLoop
from anchoring.log_store import open_alarms
from registry.bootstrap import build_self_audit
from tests.audit.helpers import build_catalogue
from tests.catalogue.helpers import metadata


def test_concurrent_publishing_raises_no_alarm(registry) -> None:  # type: ignore[no-untyped-def]
    catalogue = build_catalogue(registry)
    audit = build_self_audit(registry.state)
    audit._interval = 0.0  # tick back to back
    audit._leaves = 3  # and sweep in small steps, so ticks interleave with the writes
    checkpointer = CheckpointLoop(registry.state.db.write, registry.state.log, 0.02)
    failures: list[str] = []

    def publisher(n: int) -> None:
        for i in range(12):
            body = {"metadata": metadata(title={"zh": f"并发{n}-{i}", "en": f"c{n}-{i}"})}
            if i % 3 == 2:
                body["visibility"] = "government"
            r = registry.client.post("/api/v1/datasets", json=body, headers=catalogue.editor)
            if r.status_code != 201:
                failures.append(f"{r.status_code} {r.get_data(as_text=True)[:200]}")
            elif i % 4 == 1:
                p = registry.client.patch(f"/api/v1/datasets/{r.get_json()['id']}",
                                          json={"metadata": {"keywords": [str(i)]}},
                                          headers=catalogue.editor)
                if p.status_code != 200:
                    failures.append(f"patch {p.status_code}")

    audit.start()
    checkpointer.start()
    try:
        threads = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        audit.stop()
        checkpointer.stop()
    assert failures == []
    assert audit.last_error is None, audit.last_error
    with registry.state.db.read() as session:
        alarms = open_alarms(session)
    assert alarms == [], [(a.kind, a.leaf_index, a.detail) for a in alarms]
    assert audit.run_full() == []
    with registry.state.db.read() as session:
        assert registry.state.log.size(session) == 6 + 48 + 12
