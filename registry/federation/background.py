"""Start the federation loops beside the web workers: checkpoint submission to witnesses (when
NDR_WITNESSES is set), polling of poll-mode members, and mirroring members' catalogues
(NDR_MIRROR_INTERVAL seconds, default 5; 0 turns it off), gossip with peer hubs
(NDR_GOSSIP_PEERS, every NDR_GOSSIP_INTERVAL seconds)."""

from __future__ import annotations

import os

from registry.federation.gossip import GossipLoop, parse_peers
from registry.federation.harvest import HarvestLoop
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
    peers = parse_peers(os.environ.get("NDR_GOSSIP_PEERS", ""))
    if peers:
        gossip = GossipLoop(state, peers, parts.witness.signer.vkey,
                            float(os.environ.get("NDR_GOSSIP_INTERVAL") or 30))
        gossip.start()
        state.background.append(gossip)
    if os.environ.get("NDR_HARVEST", "1").strip().lower() not in {"0", "false", "no"}:
        harvest = HarvestLoop(state)
        harvest.start()
        state.background.append(harvest)
    if parts.mirror_interval > 0:
        mirror = MirrorLoop(Mirror(state), parts.mirror_interval)
        mirror.start()
        state.background.append(mirror)
