"""First end-to-end: publish, read, patch, withdraw through the HTTP API."""

from __future__ import annotations

METADATA = {
    "title": {"zh": "全国公路交通流量统计", "en": "National road traffic counts"},
    "description": {"zh": "各省公路交通流量月度统计。", "en": "Monthly road traffic counts."},
    "keywords": ["交通", "traffic"],
    "distributions": [{"access_url": "https://data.example.gov.cn/traffic.csv",
                       "format": "CSV", "media_type": "text/csv", "byte_size": 1024,
                       "checksum": {"algorithm": "sha256", "value": "a" * 64}}],
}


def test_publish_read_patch_withdraw(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    token = registry.token("mot")
    created = registry.client.post("/api/v1/datasets", json={"metadata": METADATA},
                                   headers=registry.auth(token))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["version"] == 1 and body["state"] == "published"
    assert body["log"]["index"] == 0
    dataset_id = body["id"]

    shown = registry.client.get(f"/api/v1/datasets/{dataset_id}")
    assert shown.status_code == 200
    assert shown.get_json()["metadata"]["title"]["zh"] == "全国公路交通流量统计"
    etag = shown.headers["ETag"]

    patched = registry.client.patch(f"/api/v1/datasets/{dataset_id}",
                                    json={"metadata": {"keywords": ["交通", "公路"]}},
                                    headers={**registry.auth(token), "If-Match": etag})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["version"] == 2
    assert patched.get_json()["change"] == "dataset.updated"

    stale = registry.client.patch(f"/api/v1/datasets/{dataset_id}",
                                  json={"metadata": {"keywords": ["x"]}},
                                  headers={**registry.auth(token), "If-Match": etag})
    assert stale.status_code == 412

    withdrawn = registry.client.delete(f"/api/v1/datasets/{dataset_id}",
                                       headers=registry.auth(token))
    assert withdrawn.status_code == 200
    assert withdrawn.get_json()["state"] == "withdrawn"
    assert withdrawn.get_json()["log"]["index"] == 2

    history = registry.client.get(f"/api/v1/datasets/{dataset_id}/versions").get_json()
    assert [v["version"] for v in history["items"]] == [1, 2, 3]
