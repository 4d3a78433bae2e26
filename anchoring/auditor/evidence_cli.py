"""``ndr verify-evidence FILE --key MEMBER_VKEY [--witness-key WITNESS_VKEY]``: check fork
evidence a hub published, offline. Exit 0 iff the file proves the member signed two histories.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anchoring.auditor.cosignature import CosignatureVerifier
from anchoring.auditor.evidence import EvidenceError, parse_evidence, verify_evidence
from anchoring.note import NoteVerifier


def _key_text(value: str) -> str:
    path = Path(value)
    return path.read_text().strip() if "+" not in value and path.is_file() else value


def run(args: argparse.Namespace) -> int:
    raw = sys.stdin.read() if args.evidence == "-" else Path(args.evidence).read_text("utf-8")
    try:
        data = parse_evidence(raw)
    except EvidenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.key:
        member = NoteVerifier.from_vkey(_key_text(args.key))
    else:
        print("warning: no --key given; using the member key named in the evidence itself",
              file=sys.stderr)
        member = NoteVerifier.from_vkey(data["member_key"])
    witness = CosignatureVerifier.from_vkey(_key_text(args.witness_key)) \
        if args.witness_key else None
    steps = verify_evidence(data, member, witness)
    for step in steps:
        print(f"{'ok' if step.ok else 'FAIL':<5} {step.name}: {step.detail}")
    if steps and all(step.ok for step in steps):
        print(f"fork proven: {data['origin']} signed two histories ({data['kind']})")
        return 0
    print("evidence does NOT prove a fork", file=sys.stderr)
    return 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("verify-evidence", help="check a hub's fork evidence offline")
    parser.add_argument("evidence", help="evidence JSON file ('-' for stdin)")
    parser.add_argument("--key", help="the member log's verifier key, or a file with it")
    parser.add_argument("--witness-key", help="the hub witness's cosignature key (optional)")
    parser.set_defaults(run=run)
