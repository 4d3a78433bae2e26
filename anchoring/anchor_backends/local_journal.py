"""The embedded default: an append-only, hash-linked, Ed25519-signed anchor journal.

This is NOT a blockchain and is never called one (receipts say ``"backend": "local-journal"``).
It lives in the registry's own database, so it protects against nothing the database operator
can do; what it gives a single-machine deployment is the same worker, receipts and rules as a
chain (sizes only grow, one record per epoch), plus tamper evidence: every record carries the
hash of the one before it and a signature by a key kept apart from the log's, so editing or
deleting a past record breaks every later link. Moving to a chain later is a configuration
change.

Record text, signed as UTF-8 bytes; its SHA-256 is the record hash (the "transaction id")::

    ndr-anchor-journal/v1
    seq <decimal>
    origin <checkpoint origin line>
    size <decimal>
    root <base64 32 bytes>
    checkpoint-sha256 <hex>
    time <RFC 3339 UTC>
    prev <hex record hash of seq-1, or 64 zeros>
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchoring.anchor_backends import (
    AnchoredState,
    AnchorRejected,
    AnchorRequest,
    Submission,
    TxState,
    TxStatus,
    WriteSessionFactory,
)
from anchoring.anchor_store import JournalRecord
from anchoring.private_files import create_or_load

BACKEND_NAME = "local-journal"
RECORD_HEADER = "ndr-anchor-journal/v1"
GENESIS_PREV = bytes(32)


@dataclass(frozen=True)
class RecordFields:
    seq: int
    origin: str
    size: int
    root: bytes
    checkpoint_sha256: bytes
    recorded_at: str
    prev_hash: bytes


def record_text(fields: RecordFields) -> str:
    if "\n" in fields.origin:
        raise ValueError("origin must be a single line")
    return (
        f"{RECORD_HEADER}\n"
        f"seq {fields.seq}\n"
        f"origin {fields.origin}\n"
        f"size {fields.size}\n"
        f"root {base64.b64encode(fields.root).decode('ascii')}\n"
        f"checkpoint-sha256 {fields.checkpoint_sha256.hex()}\n"
        f"time {fields.recorded_at}\n"
        f"prev {fields.prev_hash.hex()}\n"
    )


def record_hash(fields: RecordFields) -> bytes:
    return hashlib.sha256(record_text(fields).encode("utf-8")).digest()


def fields_of(record: JournalRecord) -> RecordFields:
    return RecordFields(record.seq, record.origin, record.size, record.root,
                        record.checkpoint_sha256, record.recorded_at, record.prev_hash)


def journal_key_id(public_key: Ed25519PublicKey) -> str:
    """Short name of the journal key: first 8 hex digits of SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:8]


def load_journal_key(path: str | Path) -> Ed25519PrivateKey:
    """Load the journal's signing key, creating it (mode 0600) on first use. Many workers may
    start at once on a fresh install: creation is race-free (anchoring.private_files), and a
    key file group or others can read is refused."""
    def new_key() -> bytes:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    pem, _created = create_or_load(path, new_key)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def _head(session: Session) -> JournalRecord | None:
    newest_first = select(JournalRecord).order_by(JournalRecord.seq.desc()).limit(1)
    return session.scalars(newest_first).first()


def _latest_for(session: Session, origin: str) -> JournalRecord | None:
    return session.scalars(
        select(JournalRecord).where(JournalRecord.origin == origin)
        .order_by(JournalRecord.seq.desc()).limit(1)).first()


def record_problems(record: JournalRecord, previous: JournalRecord | None,
                    public_key: Ed25519PublicKey) -> list[str]:
    """What is wrong with one record given its predecessor; empty when it verifies."""
    problems = []
    fields = fields_of(record)
    expected_prev = record_hash(fields_of(previous)) if previous is not None else GENESIS_PREV
    if previous is None and record.seq != 1:
        problems.append(f"record {record.seq}: records before it are missing")
    if previous is not None and previous.seq != record.seq - 1:
        problems.append(f"record {record.seq}: follows record {previous.seq}")
    if record.prev_hash != expected_prev:
        problems.append(f"record {record.seq}: prev hash does not match record {record.seq - 1}")
    if record.record_hash != record_hash(fields):
        problems.append(f"record {record.seq}: stored hash does not match its content")
    try:
        public_key.verify(record.signature, record_text(fields).encode("utf-8"))
    except InvalidSignature:
        problems.append(f"record {record.seq}: signature does not verify")
    return problems


def verify_journal(session: Session, public_key: Ed25519PublicKey) -> list[str]:
    """Walk the whole journal; report every broken link, hash or signature."""
    problems: list[str] = []
    previous: JournalRecord | None = None
    for record in session.scalars(select(JournalRecord).order_by(JournalRecord.seq)):
        problems += record_problems(record, previous, public_key)
        previous = record
    return problems


class LocalJournalBackend:
    """Anchors into the ``anchor_journal`` table; "transaction id" = record hash (hex)."""

    name = BACKEND_NAME
    contract = "anchor_journal"

    def __init__(self, write_session_factory: WriteSessionFactory,
                 signing_key: Ed25519PrivateKey) -> None:
        self._sessions = write_session_factory
        self._key = signing_key
        self.public_key = signing_key.public_key()
        self.chain_id = f"ed25519:{journal_key_id(self.public_key)}"

    def __repr__(self) -> str:  # never show the key
        return f"<LocalJournalBackend {self.chain_id}>"

    def latest_anchored(self, origin: str) -> AnchoredState | None:
        with self._sessions() as session:
            record = _latest_for(session, origin)
            if record is None:
                return None
            return AnchoredState(record.size, record.root, record.checkpoint_sha256)

    def submit(self, request: AnchorRequest) -> Submission:
        with self._sessions() as session:
            latest = _latest_for(session, request.origin)
            if latest is not None and request.size <= latest.size:
                raise AnchorRejected(f"size {request.size} is not above the journal's latest "
                                     f"{latest.size} for {request.origin!r}")
            head = _head(session)
            fields = RecordFields(
                seq=(head.seq + 1) if head is not None else 1,
                origin=request.origin,
                size=request.size,
                root=request.root,
                checkpoint_sha256=request.checkpoint_sha256,
                recorded_at=datetime.now(UTC).isoformat(timespec="microseconds"),
                prev_hash=record_hash(fields_of(head)) if head is not None else GENESIS_PREV,
            )
            text = record_text(fields).encode("utf-8")
            digest = hashlib.sha256(text).digest()
            session.add(JournalRecord(
                seq=fields.seq, origin=fields.origin, size=fields.size, root=fields.root,
                checkpoint_sha256=fields.checkpoint_sha256, recorded_at=fields.recorded_at,
                prev_hash=fields.prev_hash, record_hash=digest,
                key_id=journal_key_id(self.public_key), signature=self._key.sign(text)))
            return Submission(digest.hex())

    def status(self, tx_id: str) -> TxStatus:
        with self._sessions() as session:
            record = session.scalars(select(JournalRecord).where(
                JournalRecord.record_hash == bytes.fromhex(tx_id))).first()
            if record is None:
                return TxStatus(TxState.MISSING, detail="no journal record with this hash")
            previous = session.get(JournalRecord, record.seq - 1) if record.seq > 1 else None
            head = _head(session)
            assert head is not None
            problems = record_problems(record, previous, self.public_key)
            if problems:
                return TxStatus(TxState.FAILED, record.seq, tx_id, detail="; ".join(problems))
            return TxStatus(TxState.INCLUDED, record.seq, tx_id, head.seq - record.seq + 1)
