"""The running registry's parts, built once per process and shared by the API, pages and CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry.config import Settings
from registry.database import Database
from registry.datasets.actions import Services


@dataclass
class RegistryState:
    settings: Settings
    db: Database
    log: Any          # anchoring.log_store.TransparencyLog
    search: Any       # search backend (search.make_backend)
    background: list[Any] = field(default_factory=list)  # loops to stop at shutdown

    @property
    def services(self) -> Services:
        return Services(log=self.log, search=self.search)

    def anchors_covering(self, session: Any, size: int) -> list[dict[str, Any]]:
        """The receipt of the first final anchor whose tree includes the first `size` leaves."""
        from anchoring.anchor_store import final_anchor_covering

        receipt = final_anchor_covering(session, self.log.origin, size)
        return [receipt] if receipt else []

    def stop(self) -> None:
        for loop in self.background:
            loop.stop()
        self.background.clear()
