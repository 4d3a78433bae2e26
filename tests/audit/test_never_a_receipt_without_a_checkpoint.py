"""F6: when the log cannot sign, writes fail with 503 problem+json (nothing half-written) and
proof endpoints answer 503 with a reason, never 500."""

from __future__ import annotations

from sqlalchemy import text

from anchoring import tlog
from tests.audit.helpers import build_catalogue
from tests.catalogue.helpers import counts, metadata


def _damage_right_edge(registry) -> int:  # type: ignore[no-untyped-def]
    with registry.state.db.read() as session:
        size = registry.state.log.size(session)
    index = tlog.right_edge_indexes(size)[-1]
    with registry.state.db.write() as session:
        old = bytes(session.execute(text("SELECT hash FROM log_hashes WHERE idx = :i"),
                                    {"i": index}).scalar_one())
        session.execute(text("UPDATE log_hashes SET hash = :h WHERE idx = :i"),
                        {"h": bytes([old[0] ^ 1]) + old[1:], "i": index})
    return index


def test_damaged_right_edge_refuses_the_write_instead_of_a_receipt(registry) -> None:  # type: ignore[no-untyped-def]
    catalogue = build_catalogue(registry)
    _damage_right_edge(registry)
    before = counts(registry)
    r = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                             headers=catalogue.editor)
    assert r.status_code == 503, r.get_json()
    assert r.content_type == "application/problem+json"
    body = r.get_json()
    assert "receipt" not in r.get_data(as_text=True)
    assert body["type"].endswith("/log-unavailable")
    assert "do not recompute the head root" in body["detail"]
    assert r.headers["Retry-After"]
    assert counts(registry) == before
    r = registry.client.patch(f"/api/v1/datasets/{catalogue.public['id']}",
                              json={"metadata": {"keywords": ["x"]}}, headers=catalogue.editor)
    assert r.status_code == 503
    assert counts(registry) == before


def test_proof_endpoints_answer_503_with_a_reason_never_500(registry) -> None:  # type: ignore[no-untyped-def]
    catalogue = build_catalogue(registry)
    # Leaves appended after the last checkpoint, then the tree damaged under them: no new
    # checkpoint can be signed, so their bundles cannot be backed.
    fresh = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                 headers=catalogue.editor).get_json()
    _damage_right_edge(registry)
    r = registry.client.get(f"/api/v1/datasets/{fresh['id']}/versions/1/proof")
    assert r.status_code == 503, r.get_data(as_text=True)
    assert r.content_type == "application/problem+json"
    assert r.get_json()["detail"]
    r = registry.client.get(f"/api/v1/datasets/{fresh['id']}/versions/1/proof?format=tlog-proof")
    assert r.status_code == 503
    # The tree's stored hashes are deleted under an older checkpoint: 503, not 500.
    with registry.state.db.write() as session:
        session.execute(text("DELETE FROM log_hashes WHERE idx = 1"))
    for url in (f"/api/v1/datasets/{catalogue.public['id']}/versions/1/proof",
                "/api/v1/log/proof/inclusion?index=0&size=2",
                "/api/v1/log/proof/consistency?old=1&new=2",
                "/log/tile/0/000.p/2"):
        r = registry.client.get(url)
        assert r.status_code == 503, (url, r.status_code, r.get_data(as_text=True))
        assert r.content_type == "application/problem+json"


def test_the_checkpoint_loop_keeps_refusing_and_readyz_says_why(registry) -> None:  # type: ignore[no-untyped-def]
    from anchoring.checkpointer import CheckpointLoop

    catalogue = build_catalogue(registry)
    registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                         headers=catalogue.editor)
    _damage_right_edge(registry)
    loop = CheckpointLoop(registry.state.db.write, registry.state.log)
    registry.state.background.append(loop)
    try:
        try:
            loop.run_once()
        except Exception as exc:
            loop.last_error = exc
        r = registry.client.get("/readyz")
        assert r.status_code == 503
        assert "CheckpointLoop" in r.get_json()["checks"]
    finally:
        registry.state.background.remove(loop)
