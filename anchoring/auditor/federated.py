"""Verify a federated entry's proof chain offline (``ndr verify`` on an
``ndr-federated-proof/v1`` bundle). Standard library + cryptography.

The chain, each link checked on its own:

1. the metadata hashes to what the member's log entry commits to;
2. the entry is leaf `index` of the member's tree (inclusion proof) ...
3. ... whose checkpoint the member signed (member key) ...
4. ... and the hub's witness cosigned (cosignature/v1, witness key);
5. the hub logged exactly that cosigned checkpoint as a ``member.checkpoint`` entry ...
6. ... which is in the hub's tree (inclusion proof) ...
7. ... whose checkpoint the hub signed (hub log key) ...
8. ... and which is a prefix of every anchored hub tree (consistency proofs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from anchoring import tlog
from anchoring.auditor.cosignature import CosignatureVerifier, verify_cosignatures
from anchoring.auditor.member_entry import parse_member_entry
from anchoring.checkpoint import open_checkpoint
from anchoring.jcs import canonicalize
from anchoring.note import NoteVerifier

FORMAT = "ndr-federated-proof/v1"


@dataclass(frozen=True)
class ChainStep:
    name: str
    ok: bool
    detail: str


def is_federated(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def _hashes(values: object) -> list[bytes]:
    if not isinstance(values, list):
        raise ValueError("a proof path must be a list")
    out = []
    for value in values:
        try:
            raw = base64.b64decode(str(value), validate=True)
        except binascii.Error:
            raise ValueError("a proof hash is not base64") from None
        if len(raw) != tlog.HASH_SIZE:
            raise ValueError("a proof hash is not 32 bytes")
        out.append(raw)
    return out


def verify_federated(bundle: dict[str, Any], hub_key: NoteVerifier, *,
                     member_key: NoteVerifier | None = None,
                     witness_key: CosignatureVerifier | None = None) -> list[ChainStep]:
    """Every link of the chain; the chain holds iff every step is ok."""
    steps: list[ChainStep] = []

    def run(name: str, check: Any) -> bool:
        try:
            detail = check()
        except Exception as exc:  # each failing link is reported, never raised
            steps.append(ChainStep(name, False, str(exc) or type(exc).__name__))
            return False
        steps.append(ChainStep(name, True, detail))
        return True

    member = bundle.get("member") or {}
    hub = bundle.get("hub") or {}
    member_v = member_key or NoteVerifier.from_vkey(str(member.get("verifier_key", "")))
    witness_v = witness_key or CosignatureVerifier.from_vkey(str(bundle.get("witness_key", "")))
    entry_bytes = str(member.get("entry", "")).encode("utf-8")

    def metadata() -> str:
        entry = json.loads(entry_bytes)
        digest = hashlib.sha256(canonicalize(member["metadata"])).hexdigest()
        if digest != entry.get("metadata_sha256"):
            raise ValueError(f"metadata hashes to {digest}, the entry commits to "
                             f"{entry.get('metadata_sha256')}")
        return f"{entry.get('type')} of {entry.get('dataset')} v{entry.get('version')}"

    def member_checkpoint() -> str:
        cp = open_checkpoint(member["checkpoint"], member_v, member.get("origin"))
        return f"signed by {member_v.name}{'' if member_key else ' (key from the bundle)'}, " \
               f"size {cp.size}"

    def member_inclusion() -> str:
        cp = open_checkpoint(member["checkpoint"], member_v, member.get("origin"))
        tlog.check_record(_hashes(member["inclusion_path"]), cp.size, cp.root,
                          int(member["index"]), tlog.hash_leaf(entry_bytes))
        return f"leaf {member['index']} is in the member tree of size {cp.size}"

    def cosignature() -> str:
        (cosigned,) = verify_cosignatures(member["checkpoint"], [witness_v])
        return f"cosigned by {cosigned.name} at {cosigned.timestamp}" + \
            ("" if witness_key else " (key from the bundle)")

    def hub_entry() -> str:
        logged = parse_member_entry(str(hub["entry"]).encode("utf-8"))
        cp = open_checkpoint(member["checkpoint"], member_v, member.get("origin"))
        if (logged.origin, logged.size, logged.root) != (cp.origin, cp.size, cp.root):
            raise ValueError("the hub logged another member checkpoint")
        if logged.checkpoint != member["checkpoint"]:
            raise ValueError("the hub logged the checkpoint with other signatures")
        return f"member.checkpoint {logged.origin} size {logged.size}"

    def hub_checkpoint() -> str:
        cp = open_checkpoint(hub["checkpoint"], hub_key, hub.get("origin"))
        return f"signed by {hub_key.name}, size {cp.size}"

    def hub_inclusion() -> str:
        cp = open_checkpoint(hub["checkpoint"], hub_key, hub.get("origin"))
        tlog.check_record(_hashes(hub["inclusion_path"]), cp.size, cp.root, int(hub["index"]),
                          tlog.hash_leaf(str(hub["entry"]).encode("utf-8")))
        return f"hub leaf {hub['index']} is in the hub tree of size {cp.size}"

    def anchors() -> str:
        cp = open_checkpoint(hub["checkpoint"], hub_key, hub.get("origin"))
        receipts = hub.get("anchors") or []
        if not receipts:
            return "no anchor covers this hub checkpoint yet"
        for anchor in receipts:
            size = int(anchor["size"])
            root = base64.b64decode(anchor["root"], validate=True)
            if size == cp.size:
                if root != cp.root:
                    raise ValueError(f"anchor at size {size} holds another root")
                continue
            proof = anchor.get("consistency") or {}
            tlog.check_tree(_hashes(proof.get("proof", [])), size, root, cp.size, cp.root)
        return f"hub checkpoint is a prefix of the anchored tree(s) at " \
               f"{', '.join(str(a['size']) for a in receipts)}"

    run("metadata hash", metadata)
    run("member checkpoint signature", member_checkpoint)
    run("member inclusion proof", member_inclusion)
    run("hub cosignature", cosignature)
    run("hub logged the checkpoint", hub_entry)
    run("hub checkpoint signature", hub_checkpoint)
    run("hub inclusion proof", hub_inclusion)
    run("anchor consistency", anchors)
    return steps
