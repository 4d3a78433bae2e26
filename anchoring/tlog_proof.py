"""C2SP tlog-proof text (https://c2sp.org/tlog-proof): an offline proof that an entry is in a log.

Layout: ``c2sp.org/tlog-proof@v1``, optional ``extra <base64>``, ``index <i>``, one base64 hash
per line of the RFC 9162 inclusion path, an empty line, then the signed checkpoint verbatim.
The registry puts the log entry itself in ``extra`` so the proof alone recomputes the leaf hash.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"index (0|[1-9][0-9]*)")


class TlogProofError(ValueError):
    """The text is not a well-formed tlog-proof."""


@dataclass(frozen=True)
class TlogProof:
    index: int
    inclusion_path: list[bytes]
    checkpoint: str  # the signed note, verbatim
    extra: bytes | None = None


def encode_tlog_proof(proof: TlogProof) -> str:
    lines = [HEADER]
    if proof.extra is not None:
        lines.append("extra " + base64.b64encode(proof.extra).decode())
    lines.append(f"index {proof.index}")
    lines.extend(base64.b64encode(h).decode() for h in proof.inclusion_path)
    return "\n".join(lines) + "\n\n" + proof.checkpoint


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise TlogProofError(f"{what} is not base64") from None


def parse_tlog_proof(text: str) -> TlogProof:
    head, sep, checkpoint = text.partition("\n\n")
    if not sep or not checkpoint:
        raise TlogProofError("tlog-proof has no checkpoint after an empty line")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"first line must be {HEADER}")
    at = 1
    extra = None
    if at < len(lines) and lines[at].startswith("extra "):
        extra = _b64(lines[at][len("extra "):], "extra data")
        at += 1
    if at >= len(lines) or not (m := _INDEX.fullmatch(lines[at])):
        raise TlogProofError("missing or malformed index line")
    path = []
    for line in lines[at + 1:]:
        digest = _b64(line, "inclusion proof hash")
        if len(digest) != 32:
            raise TlogProofError("inclusion proof hashes must be 32 bytes")
        path.append(digest)
    return TlogProof(index=int(m[1]), inclusion_path=path, checkpoint=checkpoint, extra=extra)
