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

    def stop(self) -> None:
        for loop in self.background:
            loop.stop()
        self.background.clear()
