"""A member's Merkle tree in memory, built with the project's own tlog arithmetic, for tests
that need checkpoints and proofs of a log other than the registry under test (including a
forked twin of it)."""

from __future__ import annotations

from anchoring import tlog
from anchoring.checkpoint import Checkpoint, format_checkpoint
from anchoring.note import NoteSigner


class MemberLog:
    def __init__(self, signer: NoteSigner, entries: list[bytes] | None = None) -> None:
        self.signer = signer
        self.origin = signer.name
        self.hashes: dict[int, bytes] = {}
        self.edge: list[bytes] = []
        self.size = 0
        self.entries: list[bytes] = []
        for entry in entries or []:
            self.append(entry)

    def append(self, entry: bytes) -> None:
        result = tlog.append_leaves(self.size, self.edge, [tlog.hash_leaf(entry)])
        self.hashes.update(result.stored)
        self.edge = result.right_edge
        self.size += 1
        self.entries.append(entry)

    def extend(self, count: int, tag: str = "e") -> MemberLog:
        for _ in range(count):
            self.append(f'{{"{tag}":{self.size}}}'.encode())
        return self

    def _read(self, indexes: list[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]

    def root(self, size: int | None = None) -> bytes:
        return tlog.tree_hash(self.size if size is None else size, self._read)

    def note(self, size: int | None = None) -> str:
        size = self.size if size is None else size
        return self.signer.sign(format_checkpoint(Checkpoint(self.origin, size,
                                                             self.root(size))))

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = self.size if new is None else new
        return tlog.prove_tree(new, old, self._read) if 0 < old < new else []

    def fork(self, at: int, tag: str = "fork") -> MemberLog:
        """A twin sharing the first `at` entries, then diverging."""
        return MemberLog(self.signer, self.entries[:at])
