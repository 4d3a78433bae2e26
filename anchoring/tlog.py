"""RFC 9162 Merkle tree arithmetic over a flat array of "stored hashes", plus C2SP tile paths.

The storage scheme is the one of Go's golang.org/x/mod/sumdb/tlog: every hash of a *complete*
subtree is written exactly once, in the order it becomes known while records are appended.
Record n contributes its leaf hash and then the hashes of every subtree that record n completes,
so the array only grows at its end and nothing already written ever changes. Any root or proof
for any tree size then needs only O(log n) of those hashes, read in one batch; no subtree is
ever recomputed from its leaves.

Only the standard library is used: auditors run this file alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

# read_hashes(indexes) -> the stored hashes at those indexes, in the same order. A batch
# callback, so a database-backed reader can answer a whole proof with one query.
HashReader = Callable[[list[int]], list[bytes]]


class ProofError(ValueError):
    """A proof, root or tile does not verify, or was asked for with impossible sizes."""


def empty_tree_hash() -> bytes:
    """MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"").digest()


def hash_leaf(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# ---------------------------------------------------------------------------------------------
# Stored hash indexes


def stored_hash_index(level: int, n: int) -> int:
    """Position in the stored-hash array of the hash of subtree n at the given level.

    The subtree (level, n) covers records [n * 2**level, (n + 1) * 2**level). It is written
    right after the hash of its rightmost leaf's level-0 predecessor chain, which is why the
    level-0 position of its last record is computed first.
    """
    if level < 0 or n < 0:
        raise ValueError("level and n must be non-negative")
    for _ in range(level):
        n = 2 * n + 1
    index = 0
    while n > 0:
        index += n
        n >>= 1
    return index + level


def _trailing_ones(n: int) -> int:
    return ((n + 1) & -(n + 1)).bit_length() - 1


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """Inverse of :func:`stored_hash_index`: the (level, n) stored at that position."""
    if index < 0:
        raise ValueError("index must be non-negative")
    n = index // 2
    index_n = stored_hash_index(0, n)
    if index_n > index:
        raise AssertionError("stored hash index arithmetic broke")
    while True:
        # Record n + 1 starts right after the 1 + trailing_ones(n) hashes of record n.
        following = index_n + 1 + _trailing_ones(n)
        if following > index:
            break
        n += 1
        index_n = following
    level = index - index_n
    return level, n >> level


def stored_hash_count(size: int) -> int:
    """How many hashes a tree of `size` records has stored."""
    if size < 0:
        raise ValueError("size must be non-negative")
    if size == 0:
        return 0
    last = size - 1
    return stored_hash_index(0, last) + 1 + _trailing_ones(last)


def stored_hashes_for_record(n: int, leaf_hash: bytes, read_hashes: HashReader) -> list[bytes]:
    """The hashes to persist, in order, when appending record n (given its leaf hash).

    They are written at stored_hash_index(0, n), +1, +2, ...: the leaf hash, then the hash of
    each subtree that record n completes. Only the left siblings are read (at most log2 n).
    """
    if n < 0:
        raise ValueError("record index must be non-negative")
    completed = _trailing_ones(n)
    indexes = [stored_hash_index(level, (n >> level) - 1) for level in range(completed)]
    siblings = read_hashes(indexes) if indexes else []
    _check_hash_batch(siblings, len(indexes))
    hashes = [leaf_hash]
    node = leaf_hash
    for sibling in siblings:
        node = hash_children(sibling, node)
        hashes.append(node)
    return hashes


def _check_hash_batch(hashes: Sequence[bytes], expected: int) -> None:
    if len(hashes) != expected:
        raise ProofError(f"hash reader returned {len(hashes)} hashes, expected {expected}")
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ProofError("hash reader returned a hash that is not 32 bytes")


# ---------------------------------------------------------------------------------------------
# Compact ranges: the right edge of a tree, enough to extend it without reading anything.


@dataclass(frozen=True)
class AppendResult:
    """Stored hashes produced by appending a batch, and the tree's new right edge."""

    stored: list[tuple[int, bytes]]  # (stored hash index, hash), ascending
    right_edge: list[bytes]  # hashes of the maximal complete subtrees, largest first
    root: bytes


def right_edge_indexes(size: int) -> list[int]:
    """Stored indexes of the maximal complete subtrees of [0, size), largest (leftmost) first."""
    return _subtree_indexes(0, size, [])


def append_leaves(size: int, right_edge: Sequence[bytes], leaf_hashes: Sequence[bytes]
                  ) -> AppendResult:
    """Extend a tree of `size` records by `leaf_hashes`, entirely in memory.

    The right edge (the compact range [0, size)) holds every left sibling the new records can
    need, so a bulk import computes all its new stored hashes without any read.
    """
    if len(right_edge) != size.bit_count():
        raise ProofError("right edge does not match the tree size")
    edge = list(right_edge)
    stored: list[tuple[int, bytes]] = []
    n = size
    for leaf in leaf_hashes:
        position = stored_hash_index(0, n)
        stored.append((position, leaf))
        node = leaf
        for level in range(1, _trailing_ones(n) + 1):
            node = hash_children(edge.pop(), node)
            stored.append((position + level, node))
        edge.append(node)
        n += 1
    return AppendResult(stored=stored, right_edge=edge, root=root_from_right_edge(edge))


def extend_right_edge(size: int, right_edge: Sequence[bytes], leaf_hashes: Sequence[bytes]
                      ) -> list[bytes]:
    """The right edge after appending `leaf_hashes` to a tree of `size` (what a monitor keeps).

    Same arithmetic as append_leaves without remembering the interior hashes, because a
    monitor replaying millions of entries only needs the edge to recompute the root.
    """
    if len(right_edge) != size.bit_count():
        raise ProofError("right edge does not match the tree size")
    edge = list(right_edge)
    sha256 = hashlib.sha256
    n = size
    for leaf in leaf_hashes:
        node = leaf
        m = n
        while m & 1:
            node = sha256(b"\x01" + edge.pop() + node).digest()
            m >>= 1
        edge.append(node)
        n += 1
    return edge


def root_from_right_edge(right_edge: Sequence[bytes]) -> bytes:
    """Fold the compact range [0, size) into MTH(D[0:size])."""
    if not right_edge:
        return empty_tree_hash()
    node = right_edge[-1]
    for left in reversed(right_edge[:-1]):
        node = hash_children(left, node)
    return node


# ---------------------------------------------------------------------------------------------
# Roots and proofs from stored hashes (the log's side)


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (RFC 9162's split point); n must be >= 2."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_indexes(lo: int, hi: int, need: list[int]) -> list[int]:
    """Append the stored indexes whose fold gives MTH(D[lo:hi]); lo must be aligned."""
    while lo < hi:
        level = (hi - lo).bit_length() - 1  # largest complete subtree that fits
        k = 1 << level
        if lo & (k - 1):
            raise AssertionError("unaligned subtree")
        need.append(stored_hash_index(level, lo >> level))
        lo += k
    return need


def _subtree_hash(lo: int, hi: int, hashes: list[bytes], at: int) -> tuple[bytes, int]:
    """Fold the hashes listed by _subtree_indexes(lo, hi) starting at hashes[at]."""
    count = 0
    while lo < hi:
        lo += 1 << ((hi - lo).bit_length() - 1)
        count += 1
    node = hashes[at + count - 1]
    for i in range(at + count - 2, at - 1, -1):
        node = hash_children(hashes[i], node)
    return node, at + count


def tree_hash(size: int, read_hashes: HashReader) -> bytes:
    """MTH(D[0:size]) from at most log2(size) stored hashes."""
    if size < 0:
        raise ValueError("size must be non-negative")
    if size == 0:
        return empty_tree_hash()
    indexes = _subtree_indexes(0, size, [])
    hashes = read_hashes(indexes)
    _check_hash_batch(hashes, len(indexes))
    root, _ = _subtree_hash(0, size, hashes, 0)
    return root


def _record_proof_indexes(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    if hi - lo == 1:
        return need
    k = _largest_power_of_two_below(hi - lo)
    if n < lo + k:
        _record_proof_indexes(lo, lo + k, n, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _record_proof_indexes(lo + k, hi, n, need)
    return need


def _record_proof(lo: int, hi: int, n: int, hashes: list[bytes], at: int
                  ) -> tuple[list[bytes], int]:
    if hi - lo == 1:
        return [], at
    k = _largest_power_of_two_below(hi - lo)
    if n < lo + k:
        proof, at = _record_proof(lo, lo + k, n, hashes, at)
        sibling, at = _subtree_hash(lo + k, hi, hashes, at)
    else:
        sibling, at = _subtree_hash(lo, lo + k, hashes, at)
        proof, at = _record_proof(lo + k, hi, n, hashes, at)
    proof.append(sibling)
    return proof, at


def prove_record(size: int, index: int, read_hashes: HashReader) -> list[bytes]:
    """RFC 9162 inclusion proof (PATH) of record `index` in the tree of `size` records."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    indexes = _record_proof_indexes(0, size, index, [])
    hashes = read_hashes(indexes) if indexes else []
    _check_hash_batch(hashes, len(indexes))
    proof, _ = _record_proof(0, size, index, hashes, 0)
    return proof


def _tree_proof_indexes(lo: int, hi: int, old: int, need: list[int]) -> list[int]:
    if old == hi:
        return need if lo == 0 else _subtree_indexes(lo, hi, need)
    k = _largest_power_of_two_below(hi - lo)
    if old <= lo + k:
        _tree_proof_indexes(lo, lo + k, old, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _tree_proof_indexes(lo + k, hi, old, need)
    return need


def _tree_proof(lo: int, hi: int, old: int, hashes: list[bytes], at: int
                ) -> tuple[list[bytes], int]:
    if old == hi:
        if lo == 0:
            return [], at
        node, at = _subtree_hash(lo, hi, hashes, at)
        return [node], at
    k = _largest_power_of_two_below(hi - lo)
    if old <= lo + k:
        proof, at = _tree_proof(lo, lo + k, old, hashes, at)
        sibling, at = _subtree_hash(lo + k, hi, hashes, at)
    else:
        sibling, at = _subtree_hash(lo, lo + k, hashes, at)
        proof, at = _tree_proof(lo + k, hi, old, hashes, at)
    proof.append(sibling)
    return proof, at


def tree_proof_indexes(new: int, old: int) -> list[int]:
    """The stored indexes prove_tree(new, old) reads (to fetch them with others in one batch)."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    return _tree_proof_indexes(0, new, old, [])


def prove_tree(new: int, old: int, read_hashes: HashReader) -> list[bytes]:
    """RFC 9162 consistency proof that the tree of `old` records is a prefix of `new`."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    indexes = _tree_proof_indexes(0, new, old, [])
    hashes = read_hashes(indexes) if indexes else []
    _check_hash_batch(hashes, len(indexes))
    proof, _ = _tree_proof(0, new, old, hashes, 0)
    return proof


# ---------------------------------------------------------------------------------------------
# Verification (the auditor's side): RFC 9162 §2.1.3.2 and §2.1.4.2, step by step.


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes,
                              proof: Sequence[bytes]) -> bytes:
    """Run RFC 9162 §2.1.3.2 and return the computed root (raises if the path shape is wrong)."""
    if index >= size or index < 0:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def check_record(proof: Sequence[bytes], size: int, root: bytes, index: int,
                 leaf_hash: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf `index` is in the tree of `size` with `root`."""
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise ProofError("inclusion proof does not lead to the root hash")


def check_tree(proof: Sequence[bytes], new: int, new_root: bytes, old: int,
               old_root: bytes) -> None:
    """Raise ProofError unless `proof` shows tree (old, old_root) is a prefix of (new, new_root)."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    if old == new:
        # The proof is empty by definition; the trees are consistent iff the roots agree.
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("different roots for the same tree size")
        return
    path = list(proof)
    if not path:
        raise ProofError("consistency proof is empty")
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


# ---------------------------------------------------------------------------------------------
# Tiles (C2SP tlog-tiles, height 8)


@dataclass(frozen=True)
class Tile:
    """A tile: level L (or -1 for an entry bundle), index N and width W (1..256)."""

    level: int
    n: int
    width: int = TILE_WIDTH

    @property
    def is_entries(self) -> bool:
        return self.level == ENTRIES_LEVEL

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    def records_needed(self) -> int:
        """The smallest tree size for which this tile (at this width) exists."""
        level = max(self.level, 0)
        return (self.n * TILE_WIDTH + self.width) << (TILE_HEIGHT * level)

    def path(self) -> str:
        return tile_path(self)


ENTRIES_LEVEL = -1
_MAX_TILE_LEVEL = 63


def encode_tile_index(n: int) -> str:
    """C2SP index encoding: 1234067 -> x001/x234/067."""
    if n < 0:
        raise ValueError("tile index must be non-negative")
    groups: list[str] = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(tile: Tile) -> str:
    """Path of a tile below the log prefix, e.g. ``tile/0/x001/234`` or ``tile/entries/5.p/7``."""
    if not 1 <= tile.width <= TILE_WIDTH:
        raise ValueError("tile width must be between 1 and 256")
    level = "entries" if tile.is_entries else str(tile.level)
    suffix = f".p/{tile.width}" if tile.is_partial else ""
    return f"tile/{level}/{encode_tile_index(tile.n)}{suffix}"


_TILE_PATH = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/"
    r"(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


def parse_tile_path(path: str) -> Tile:
    """Parse a tile path (strictly: no extra leading zeroes, width 1..255, level 0..63)."""
    m = _TILE_PATH.fullmatch(path)
    if m is None:
        raise ValueError(f"malformed tile path {path!r}")
    level = ENTRIES_LEVEL if m["level"] == "entries" else int(m["level"])
    if level > _MAX_TILE_LEVEL:
        raise ValueError("tile level must be at most 63")
    groups = m["index"].split("/")
    if len(groups) > 1 and groups[0] == "x000":
        raise ValueError("tile index has a leading zero group")
    n = int("".join(g.lstrip("x") for g in groups))
    width = TILE_WIDTH
    if m["width"] is not None:
        width = int(m["width"])
        if width >= TILE_WIDTH:
            raise ValueError("partial tile width must be between 1 and 255")
    return Tile(level=level, n=n, width=width)


def tile_for_size(level: int, n: int, size: int) -> Tile | None:
    """The widest tile (level, n) that a tree of `size` records has, or None if it has none."""
    span = TILE_HEIGHT * max(level, 0)
    available = (size >> span) - n * TILE_WIDTH
    if available <= 0:
        return None
    return Tile(level=level, n=n, width=min(available, TILE_WIDTH))


def tile_hash_coordinates(tile: Tile) -> list[tuple[int, int]]:
    """(tree level, node index) of each hash in a hash tile, all complete subtrees."""
    if tile.is_entries:
        raise ValueError("entry bundles hold entries, not hashes")
    level = TILE_HEIGHT * tile.level
    first = tile.n * TILE_WIDTH
    return [(level, first + i) for i in range(tile.width)]


def split_hash_tile(data: bytes, width: int) -> list[bytes]:
    """Cut a hash tile into its `width` hashes (raises if the length is wrong)."""
    if len(data) != width * HASH_SIZE:
        raise ProofError(f"hash tile has {len(data)} bytes, expected {width * HASH_SIZE}")
    return [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its big-endian uint16 length."""
    parts = []
    for entry in entries:
        if len(entry) > 0xFFFF:
            raise ValueError("log entries are at most 65535 bytes")
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(entry)
    return b"".join(parts)


def split_entry_bundle(data: bytes) -> list[bytes]:
    """Inverse of encode_entry_bundle; raises on a truncated bundle."""
    entries = []
    at = 0
    view = memoryview(data)
    while at < len(data):
        if at + 2 > len(data):
            raise ProofError("entry bundle is truncated")
        length = int.from_bytes(view[at:at + 2], "big")
        at += 2
        if at + length > len(data):
            raise ProofError("entry bundle is truncated")
        entries.append(bytes(view[at:at + length]))
        at += length
    return entries
