"""F1: a slug can never take over another dataset's id (URL, API, CKAN package_show, proofs)."""

from __future__ import annotations

from sqlalchemy import update

from registry.datasets.models import Dataset
from tests.catalogue.helpers import counts, metadata


def _publish(registry, headers, **body):  # type: ignore[no-untyped-def]
    return registry.client.post("/api/v1/datasets", json={"metadata": metadata(), **body},
                                headers=headers)


def test_a_slug_shaped_like_a_uuid_is_refused_naming_the_field(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("org-a")
    registry.org("org-b")
    a = _publish(registry, registry.auth(registry.token("org-a"))).get_json()
    before = counts(registry)
    attacker = registry.auth(registry.token("org-b"))
    r = _publish(registry, attacker, slug=a["id"])
    assert r.status_code == 422
    problem = r.get_json()
    assert r.content_type.startswith("application/problem+json")
    assert [e["pointer"] for e in problem["errors"]] == ["/slug"]
    assert counts(registry) == before  # nothing half-written
    # Any UUID shape, not only ids that exist, and on PATCH too.
    r = _publish(registry, attacker, slug="00000000-0000-4000-8000-000000000000")
    assert r.status_code == 422
    b = _publish(registry, attacker).get_json()
    r = registry.client.patch(f"/api/v1/datasets/{b['id']}", json={"slug": a["id"]},
                              headers=attacker)
    assert r.status_code == 422 and r.get_json()["errors"][0]["pointer"] == "/slug"


def test_an_id_always_names_its_own_dataset_even_if_a_slug_equals_it(registry) -> None:  # type: ignore[no-untyped-def]
    """A legacy row whose slug equals another dataset's id (let in by an older release)."""
    registry.org("org-a")
    registry.org("org-b")
    owner = registry.auth(registry.token("org-a"))
    a = _publish(registry, owner).get_json()
    b = _publish(registry, registry.auth(registry.token("org-b")),
                 metadata=metadata(title={"zh": "乙的数据", "en": "B's data"})).get_json()
    with registry.state.db.write() as session:
        session.execute(update(Dataset).where(Dataset.id == b["id"]).values(slug=a["id"]))
    assert registry.client.get(f"/api/v1/datasets/{a['id']}").get_json()["id"] == a["id"]
    ckan = registry.client.get(f"/api/3/action/package_show?id={a['id']}").get_json()
    assert ckan["result"]["id"] == a["id"]
    bundle = registry.client.get(f"/api/v1/datasets/{a['id']}/versions/1/proof").get_json()
    assert bundle["dataset"] == a["id"]
    page = registry.client.get(f"/datasets/{a['id']}")
    assert page.status_code == 200 and "乙的数据" not in page.get_data(as_text=True)
    r = registry.client.patch(f"/api/v1/datasets/{a['id']}",
                              json={"metadata": metadata(keywords=["改过"])}, headers=owner)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["id"] == a["id"]


def test_generated_slugs_never_look_like_ids(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("org-a")
    title = {"zh": "标题", "en": "3F2504E0-4F89-11D3-9A0C-0305E82C3301"}
    r = _publish(registry, registry.auth(registry.token("org-a")),
                 metadata=metadata(title=title))
    assert r.status_code == 201
    assert r.get_json()["slug"] == "dataset-3f2504e0-4f89-11d3-9a0c-0305e82c3301"
