"""The running registry's parts, built once per process and shared by the API, pages and CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from anchoring.log_store import TransparencyLog
from registry.config import Settings
from registry.database import Database
from registry.datasets.actions import Services
from registry.datasets.sequencer import PublishSequencer
from registry.datasets.sequencer_socket import RemoteSequencer
from search import SearchBackend


class Stoppable(Protocol):
    """A background loop stopped at shutdown (checkpoints, anchors, search outbox)."""

    def stop(self) -> None: ...


@dataclass
class RegistryState:
    settings: Settings
    db: Database
    log: TransparencyLog
    search: SearchBackend
    # Batches this process's concurrent API writes (None: one transaction per request).
    sequencer: PublishSequencer | None = None
    # The sequencer process beside the workers (`ndr sequencer`), tried first when set.
    remote_sequencer: RemoteSequencer | None = None
    background: list[Stoppable] = field(default_factory=list)  # loops to stop at shutdown

    @property
    def services(self) -> Services:
        return Services(log=self.log, search=self.search)

    def anchors_covering(self, session: Session, size: int) -> list[dict[str, Any]]:
        """The receipt of the first final anchor whose tree includes the first `size` leaves."""
        from anchoring.anchor_store import final_anchor_covering

        receipt = final_anchor_covering(session, self.log.origin, size)
        return [receipt] if receipt else []

    def stop(self) -> None:
        if self.sequencer is not None:
            self.sequencer.stop()
        for loop in self.background:
            loop.stop()
        self.background.clear()
