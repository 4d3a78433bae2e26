"""Command line of the auditor tools; ``ndr verify`` / ``ndr monitor`` delegate here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anchoring.auditor.evidence_cli import add_parser as add_evidence_parser
from anchoring.auditor.federated_cli import looks_federated
from anchoring.auditor.federated_cli import run as run_federated
from anchoring.auditor.monitor import FetchError, MonitorAlarm, run_monitor
from anchoring.auditor.verify import Report, verify_bundle, verify_tlog_proof
from anchoring.bundle import BundleError, parse_bundle
from anchoring.checkpoint import CheckpointError
from anchoring.note import NoteError, NoteVerifier
from anchoring.tlog_proof import HEADER as TLOG_PROOF_HEADER
from anchoring.tlog_proof import TlogProofError, parse_tlog_proof

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _read_key(value: str) -> NoteVerifier:
    """--key takes the verifier key itself or a file holding it."""
    path = Path(value)
    text = path.read_text().strip() if "+" not in value and path.is_file() else value
    return NoteVerifier.from_vkey(text)


def _print_report(report: Report) -> int:
    for step in report.steps:
        status = "skip" if step.skipped else ("ok" if step.ok else "FAIL")
        print(f"{status:<5} {step.name}: {step.detail}")
    failure = report.first_failure
    if failure is not None:
        print(f"verification FAILED at: {failure.name}", file=sys.stderr)
        return EXIT_FAILED
    print("verified")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    verifier = _read_key(args.key)
    raw = sys.stdin.read() if args.proof == "-" else Path(args.proof).read_text("utf-8")
    if looks_federated(raw):  # a federated entry: the whole member -> hub -> anchor chain
        return run_federated(args, raw, verifier)
    if raw.startswith(TLOG_PROOF_HEADER):
        if args.rpc:
            print("--rpc needs a JSON bundle (a tlog-proof carries no anchors)", file=sys.stderr)
            return EXIT_USAGE
        return _print_report(verify_tlog_proof(parse_tlog_proof(raw), verifier,
                                               origin=args.origin))
    bundle = parse_bundle(raw)
    return _print_report(verify_bundle(bundle, verifier, origin=args.origin, rpc_url=args.rpc))


def _monitor(args: argparse.Namespace) -> int:
    verifier = _read_key(args.key)
    state = Path(args.state) if args.state else None
    try:
        result = run_monitor(args.url, verifier, state, origin=args.origin,
                             workers=args.workers)
    except MonitorAlarm as alarm:
        print(f"ALARM: {alarm}", file=sys.stderr)
        return EXIT_FAILED
    print(f"ok: verified {result.entries_checked} new entries; size {result.previous_size} -> "
          f"{result.size}; root {result.root.hex()}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ndr-auditor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check a proof bundle or tlog-proof offline")
    verify.add_argument("proof", help="bundle JSON or .tlog-proof file ('-' for stdin)")
    verify.add_argument("--key", required=True, help="the log's verifier key, or a file with it")
    verify.add_argument("--origin", help="expected log origin (default: the key name)")
    verify.add_argument("--rpc", help="chain RPC URL: also check the anchors on chain")
    verify.add_argument("--member-key", help="federated bundles: the member log's key")
    verify.add_argument("--witness-key", help="federated bundles: the hub witness's key")
    verify.set_defaults(run=_verify)
    monitor = sub.add_parser("monitor", help="replay the log from its tiles and watch it")
    monitor.add_argument("url", help="log prefix, e.g. https://registry.example/log/")
    monitor.add_argument("--key", required=True, help="the log's verifier key, or a file with it")
    monitor.add_argument("--origin", help="expected log origin (default: the key name)")
    monitor.add_argument("--state", help="state file: remembers what was verified")
    monitor.add_argument("--workers", type=int, default=4, help="parallel tile fetches")
    monitor.set_defaults(run=_monitor)
    add_evidence_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (OSError, NoteError, CheckpointError, BundleError, TlogProofError, FetchError,
            ValueError) as exc:
        # A key or checkpoint we cannot even read is a failure of the log or of the input.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED if isinstance(exc, NoteError | CheckpointError) else EXIT_USAGE
