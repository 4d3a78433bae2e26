"""The federation parts of a running registry, built once per process from the environment.

Environment (documented in docs/federation.md):

* ``NDR_WITNESS_KEY_FILE`` (default ``var/witness.key``, created 0600) and ``NDR_WITNESS_NAME``
  (default ``<log origin>/witness``): this registry's cosigner key, when it acts as a hub.
* ``NDR_WITNESSES``: witnesses this registry submits its checkpoints to, one per line (or
  separated by ``;``) as ``<submission URL prefix> <witness vkey>``.
* ``NDR_WITNESS_QUORUM`` (default: all of them): cosignatures a checkpoint needs to count as
  witnessed. ``NDR_WITNESS_INTERVAL`` (seconds, default 1): how often to submit.
* ``NDR_FEDERATION_POLL`` (default on): poll the members configured with mode ``poll``.
* ``NDR_MIRROR_INTERVAL`` (seconds, default 5; 0 = off): mirror members' public catalogues.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from anchoring.keys import create_key_file, load_key_file
from anchoring.witness import CosignatureSigner
from registry.federation.member import WitnessEndpoint, parse_witness_config
from registry.federation.witnessing import HubWitness
from registry.state import RegistryState

_ATTRIBUTE = "_ndr_federation"


@dataclass
class Federation:
    witness: HubWitness
    witnesses: list[WitnessEndpoint] = field(default_factory=list)
    quorum: int = 0
    submit_interval: float = 1.0
    poll: bool = True
    mirror_interval: float = 5.0


def _load_or_create(path: Path, name: str) -> CosignatureSigner:
    """Create the key 0600 on first use; several workers starting at once all end up with the
    one file (O_EXCL: the losers wait for the winner to finish writing it)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return CosignatureSigner.from_note_signer(create_key_file(path, name))
        except FileExistsError:
            pass
    deadline = time.monotonic() + 5
    while True:
        try:
            return CosignatureSigner.from_note_signer(load_key_file(path))
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def build_federation(state: RegistryState) -> Federation:
    env = os.environ
    key_file = Path(env.get("NDR_WITNESS_KEY_FILE") or state.settings.var_dir / "witness.key")
    name = env.get("NDR_WITNESS_NAME") or f"{state.log.origin}/witness"
    witnesses = parse_witness_config(env.get("NDR_WITNESSES", ""))
    quorum = int(env.get("NDR_WITNESS_QUORUM") or len(witnesses))
    if witnesses and not 1 <= quorum <= len(witnesses):
        raise ValueError(f"NDR_WITNESS_QUORUM must be between 1 and {len(witnesses)}")
    return Federation(
        witness=HubWitness(_load_or_create(key_file, name), state.log),
        witnesses=witnesses, quorum=quorum,
        submit_interval=float(env.get("NDR_WITNESS_INTERVAL") or 1.0),
        poll=env.get("NDR_FEDERATION_POLL", "1").strip().lower() not in {"0", "false", "no"},
        mirror_interval=float(env.get("NDR_MIRROR_INTERVAL") or 5.0))


def federation(state: RegistryState) -> Federation:
    """This process's federation parts (built on first use, then kept on the state)."""
    built = getattr(state, _ATTRIBUTE, None)
    if built is None:
        built = build_federation(state)
        setattr(state, _ATTRIBUTE, built)
    return built
