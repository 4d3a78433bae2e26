"""Shared test data for the catalogue tests."""

from __future__ import annotations

import copy
from typing import Any

BASE_METADATA: dict[str, Any] = {
    "title": {"zh": "全国公路交通流量统计", "en": "National road traffic counts"},
    "description": {"zh": "各省公路交通流量月度统计。", "en": "Monthly road traffic counts."},
    "keywords": ["交通", "traffic"],
    "themes": ["TRAN"],
    "issued": "2024-01-15",
    "resource_code": "A0101-0001",
    "sharing": {"type": "conditional", "conditions": "仅限政府部门用于交通规划"},
    "open_attribute": "conditional",
    "update_cycle": "monthly",
    "data_grade": "general",
    "data_items": [{"name": "路段编号", "type": "string"}, {"name": "流量", "type": "integer"}],
    "distributions": [{"access_url": "https://data.example.gov.cn/traffic.csv",
                       "format": "CSV", "media_type": "text/csv", "byte_size": 1024,
                       "checksum": {"algorithm": "sha256", "value": "a" * 64}}],
}


def metadata(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE_METADATA)
    out.update(changes)
    return out


def counts(registry) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(dataset versions, log leaves): both must be unchanged after any rejected write."""
    from sqlalchemy import func, select

    from registry.datasets.models import DatasetVersion

    with registry.state.db.read() as session:
        versions = session.scalar(select(func.count()).select_from(DatasetVersion))
        return int(versions or 0), registry.state.log.size(session)
