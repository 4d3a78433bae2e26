"""The Merkle arithmetic against pymerkle and against RFC 9162's own recursive definitions."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from anchoring import tlog

# ---- RFC 9162 §2.1 definitions written out literally (the slow, obviously-right reference) ----


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return [*rfc_path(m, d[:k]), mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), mth(d[:k])]


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), mth(d[:k])]


class MemoryLog:
    """Stored hashes in a dict, filled one record at a time via stored_hashes_for_record."""

    def __init__(self) -> None:
        self.hashes: dict[int, bytes] = {}
        self.entries: list[bytes] = []
        self.reads: list[int] = []

    def read(self, indexes: list[int]) -> list[bytes]:
        self.reads.append(len(indexes))
        return [self.hashes[i] for i in indexes]

    def append(self, entry: bytes) -> None:
        n = len(self.entries)
        for k, h in enumerate(tlog.stored_hashes_for_record(n, tlog.hash_leaf(entry), self.read)):
            self.hashes[tlog.stored_hash_index(0, n) + k] = h
        self.entries.append(entry)


def build(n: int) -> tuple[MemoryLog, InmemoryTree]:
    log, ref = MemoryLog(), InmemoryTree()  # pymerkle's default hashing is RFC 9162's
    for i in range(n):
        entry = f"entry {i}".encode()
        log.append(entry)
        ref.append_entry(entry)
    return log, ref


@pytest.fixture(scope="module")
def trees() -> tuple[MemoryLog, InmemoryTree]:
    return build(600)


def test_stored_hash_index_round_trips_and_counts(trees) -> None:  # type: ignore[no-untyped-def]
    log, _ = trees
    assert len(log.hashes) == tlog.stored_hash_count(600)
    assert sorted(log.hashes) == list(range(len(log.hashes)))
    for index in range(len(log.hashes)):
        level, n = tlog.split_stored_hash_index(index)
        assert tlog.stored_hash_index(level, n) == index
    # The hash of subtree (level, n) is the MTH of its records.
    for level, n in [(0, 5), (1, 7), (3, 2), (6, 1), (9, 0)]:
        span = log.entries[n << level:(n + 1) << level]
        assert log.hashes[tlog.stored_hash_index(level, n)] == mth(span)


def test_roots_match_pymerkle_and_rfc_definition(trees) -> None:  # type: ignore[no-untyped-def]
    log, ref = trees
    for size in [*range(0, 70), 127, 128, 129, 255, 256, 257, 511, 512, 599, 600]:
        root = tlog.tree_hash(size, log.read)
        assert root == ref.get_root(size)
        assert root == mth(log.entries[:size])


def test_inclusion_proofs_match_pymerkle(trees) -> None:  # type: ignore[no-untyped-def]
    log, ref = trees
    rng = random.Random(9162)
    for _ in range(400):
        size = rng.randint(1, 600)
        index = rng.randrange(size)
        proof = tlog.prove_record(size, index, log.read)
        assert proof == ref.prove_inclusion(index + 1, size).path[1:]
        assert proof == rfc_path(index, log.entries[:size])
        tlog.check_record(proof, size, ref.get_root(size), index, ref.get_leaf(index + 1))


def test_consistency_proofs_match_rfc_and_verify_against_pymerkle_roots(trees) -> None:  # type: ignore[no-untyped-def]
    log, ref = trees
    rng = random.Random(6962)
    pairs = [(1, 1), (1, 2), (3, 7), (4, 8), (8, 600), (255, 256), (256, 257), (600, 600)]
    pairs += [(old, rng.randint(old, 600)) for old in (rng.randint(1, 600) for _ in range(400))]
    for old, new in pairs:
        proof = tlog.prove_tree(new, old, log.read)
        assert proof == rfc_subproof(old, log.entries[:new], True)
        tlog.check_tree(proof, new, ref.get_root(new), old, ref.get_root(old))


def test_proofs_read_logarithmically_many_hashes_in_one_batch() -> None:
    log, _ = build(1000)
    log.reads.clear()
    tlog.prove_record(1000, 377, log.read)
    tlog.prove_tree(1000, 377, log.read)
    tlog.tree_hash(999, log.read)
    assert len(log.reads) == 3  # one batch per call
    assert max(log.reads) <= 2 * 10


def test_bulk_append_equals_record_by_record(trees) -> None:  # type: ignore[no-untyped-def]
    log, ref = trees
    leaves = [tlog.hash_leaf(e) for e in log.entries]
    first = tlog.append_leaves(0, [], leaves[:333])
    second = tlog.append_leaves(333, first.right_edge, leaves[333:])
    assert dict(first.stored + second.stored) == log.hashes
    assert second.root == ref.get_root(600)
    assert tlog.extend_right_edge(333, first.right_edge, leaves[333:]) == second.right_edge
    assert [h for h in second.right_edge] == log.read(tlog.right_edge_indexes(600))


def test_impossible_proof_requests_are_refused(trees) -> None:  # type: ignore[no-untyped-def]
    log, _ = trees
    for size, index in [(0, 0), (5, 5), (5, -1)]:
        with pytest.raises(tlog.ProofError):
            tlog.prove_record(size, index, log.read)
    for new, old in [(5, 0), (5, 6)]:
        with pytest.raises(tlog.ProofError):
            tlog.prove_tree(new, old, log.read)


def _flip(data: bytes, position: int, bit: int) -> bytes:
    return data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1:]


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 600), data=st.data())
def test_any_flipped_bit_in_an_inclusion_proof_is_detected(trees, size: int, data) -> None:  # type: ignore[no-untyped-def]
    log, _ = trees
    index = data.draw(st.integers(0, size - 1))
    proof = tlog.prove_record(size, index, log.read)
    root = tlog.tree_hash(size, log.read)
    leaf = tlog.hash_leaf(log.entries[index])
    tlog.check_record(proof, size, root, index, leaf)
    bit = data.draw(st.integers(0, 7))
    # (The tree size is not varied: an inclusion proof alone does not bind it; the signed
    # checkpoint binds size and root together, and that is tested with the checkpoints.)
    target = data.draw(st.sampled_from(["entry", "root", "proof", "index"]
                                       if proof else ["entry", "root", "index"]))
    with pytest.raises(tlog.ProofError):
        if target == "entry":
            entry = log.entries[index]
            pos = data.draw(st.integers(0, len(entry) - 1))
            tlog.check_record(proof, size, root, index, tlog.hash_leaf(_flip(entry, pos, bit)))
        elif target == "root":
            tlog.check_record(proof, size, _flip(root, data.draw(st.integers(0, 31)), bit),
                              index, leaf)
        elif target == "proof":
            k = data.draw(st.integers(0, len(proof) - 1))
            bad = [*proof]
            bad[k] = _flip(bad[k], data.draw(st.integers(0, 31)), bit)
            tlog.check_record(bad, size, root, index, leaf)
        else:
            other = data.draw(st.integers(0, size).filter(lambda i: i != index))
            tlog.check_record(proof, size, root, other, leaf)


@settings(max_examples=300, deadline=None)
@given(new=st.integers(2, 600), data=st.data())
def test_any_flipped_bit_in_a_consistency_proof_is_detected(trees, new: int, data) -> None:  # type: ignore[no-untyped-def]
    log, _ = trees
    old = data.draw(st.integers(1, new - 1))
    proof = tlog.prove_tree(new, old, log.read)
    old_root, new_root = tlog.tree_hash(old, log.read), tlog.tree_hash(new, log.read)
    tlog.check_tree(proof, new, new_root, old, old_root)
    bit, pos = data.draw(st.integers(0, 7)), data.draw(st.integers(0, 31))
    k = data.draw(st.integers(-2, len(proof) - 1))
    with pytest.raises(tlog.ProofError):
        if k == -2:
            tlog.check_tree(proof, new, new_root, old, _flip(old_root, pos, bit))
        elif k == -1:
            tlog.check_tree(proof, new, _flip(new_root, pos, bit), old, old_root)
        else:
            bad = [*proof]
            bad[k] = _flip(bad[k], pos, bit)
            tlog.check_tree(bad, new, new_root, old, old_root)


def test_proof_shape_errors() -> None:
    log, _ = build(10)
    root = tlog.tree_hash(10, log.read)
    proof = tlog.prove_record(10, 3, log.read)
    leaf = tlog.hash_leaf(log.entries[3])
    with pytest.raises(tlog.ProofError):
        tlog.check_record([*proof, proof[0]], 10, root, 3, leaf)
    with pytest.raises(tlog.ProofError):
        tlog.check_record(proof[:-1], 10, root, 3, leaf)
    with pytest.raises(tlog.ProofError):
        tlog.check_tree([], 10, root, 10, tlog.tree_hash(9, log.read))
    with pytest.raises(tlog.ProofError):
        tlog.check_tree([], 10, root, 4, tlog.tree_hash(4, log.read))


@pytest.mark.parametrize(("tile", "path"), [
    (tlog.Tile(0, 0), "tile/0/000"),
    (tlog.Tile(0, 1234067), "tile/0/x001/x234/067"),
    (tlog.Tile(2, 5, 17), "tile/2/005.p/17"),
    (tlog.Tile(tlog.ENTRIES_LEVEL, 1000, 255), "tile/entries/x001/000.p/255"),
])
def test_tile_paths_follow_c2sp(tile: tlog.Tile, path: str) -> None:
    assert tlog.tile_path(tile) == path
    assert tlog.parse_tile_path(path) == tile


@pytest.mark.parametrize("path", ["tile/0/1", "tile/00/000", "tile/0/000.p/256",
                                  "tile/0/000.p/0", "tile/0/x000/001", "tile/64/000",
                                  "tile/0/000.p/007", "tile/entries/000/", "tile/-1/000"])
def test_malformed_tile_paths_are_rejected(path: str) -> None:
    with pytest.raises(ValueError):
        tlog.parse_tile_path(path)


def test_tile_sizes_from_the_spec_example() -> None:
    # tlog-tiles: a tree of 70,000 has 273 full level-0 tiles and a partial one of width 112,
    # a full level-1 tile and a partial of width 17, and a partial level-2 tile of width 1.
    assert tlog.tile_for_size(0, 272, 70_000) == tlog.Tile(0, 272)
    assert tlog.tile_for_size(0, 273, 70_000) == tlog.Tile(0, 273, 112)
    assert tlog.tile_for_size(1, 0, 70_000) == tlog.Tile(1, 0)
    assert tlog.tile_for_size(1, 1, 70_000) == tlog.Tile(1, 1, 17)
    assert tlog.tile_for_size(2, 0, 70_000) == tlog.Tile(2, 0, 1)
    assert tlog.tile_for_size(0, 274, 70_000) is None


def test_entry_bundles_round_trip_and_reject_truncation() -> None:
    entries = [b"", b"a", bytes(300), b"x" * 65535]
    bundle = tlog.encode_entry_bundle(entries)
    assert bundle[:5] == b"\x00\x00\x00\x01a"
    assert tlog.split_entry_bundle(bundle) == entries
    with pytest.raises(tlog.ProofError):
        tlog.split_entry_bundle(bundle[:-1])
    with pytest.raises(ValueError):
        tlog.encode_entry_bundle([bytes(65536)])
