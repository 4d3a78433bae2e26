"""Start the federation loops beside the web workers: checkpoint submission to witnesses (when
NDR_WITNESSES is set) and polling of poll-mode members (when this registry has any)."""

from __future__ import annotations

from registry.federation.member import CheckpointSubmitter
from registry.federation.poller import MemberPoller
from registry.federation.runtime import federation
from registry.state import RegistryState


def start_federation(state: RegistryState) -> None:
    parts = federation(state)
    if parts.witnesses:
        submitter = CheckpointSubmitter(state.db.read, state.db.write, state.log,
                                        parts.witnesses, parts.submit_interval)
        submitter.start()
        state.background.append(submitter)
    if parts.poll:
        poller = MemberPoller(state.db.read, state.db.write, parts.witness)
        poller.start()
        state.background.append(poller)
