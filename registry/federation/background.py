"""Start the federation loops beside the web workers: checkpoint submission to witnesses (when
NDR_WITNESSES is set), polling of poll-mode members, and mirroring members' catalogues
(NDR_MIRROR_INTERVAL seconds, default 5; 0 turns it off)."""

from __future__ import annotations

from registry.federation.member import CheckpointSubmitter
from registry.federation.mirror import Mirror, MirrorLoop
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
    if parts.mirror_interval > 0:
        mirror = MirrorLoop(Mirror(state), parts.mirror_interval)
        mirror.start()
        state.background.append(mirror)
