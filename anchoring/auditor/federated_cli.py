"""``ndr verify`` on a federated proof bundle: print each link of the chain."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anchoring.auditor.cosignature import CosignatureVerifier
from anchoring.auditor.federated import FORMAT, verify_federated
from anchoring.note import NoteVerifier


def looks_federated(raw: str) -> bool:
    return raw.lstrip().startswith("{") and f'"{FORMAT}"' in raw[:4096]


def _key_text(value: str) -> str:
    path = Path(value)
    return path.read_text().strip() if "+" not in value and path.is_file() else value


def run(args: argparse.Namespace, raw: str, hub_key: NoteVerifier) -> int:
    bundle = json.loads(raw)
    member = NoteVerifier.from_vkey(_key_text(args.member_key)) \
        if getattr(args, "member_key", None) else None
    witness = CosignatureVerifier.from_vkey(_key_text(args.witness_key)) \
        if getattr(args, "witness_key", None) else None
    steps = verify_federated(bundle, hub_key, member_key=member, witness_key=witness)
    for step in steps:
        print(f"{'ok' if step.ok else 'FAIL':<5} {step.name}: {step.detail}")
    failed = next((s for s in steps if not s.ok), None)
    if failed is not None:
        print(f"verification FAILED at: {failed.name}")
        return 1
    print("verified")
    return 0
