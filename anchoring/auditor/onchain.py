"""Check a proof bundle's EVM anchors against the chain itself, with the standard library only.

An auditor should not have to install web3 (or trust the registry's servers) to see that an
anchor is really on chain, so this module speaks JSON-RPC with urllib and ABI-encodes the two
calls it needs by hand. For each EVM anchor receipt in a bundle it asks the node:

* ``eth_chainId`` — is this the chain the receipt names?
* ``eth_call rootAt(originId, size)`` — does the contract hold this root and checkpoint hash at
  this size? This is the claim that matters: it is contract state, which only an authorised
  submitter could have written, and which can never be overwritten (sizes only grow).
* ``eth_getTransactionReceipt`` — did the named transaction execute successfully (status 1) in
  the named block, against the named contract, emitting ``Anchored`` with these values?
* ``eth_getBlockByNumber`` — is that block still on the canonical chain (same hash)?

``hashlib.sha3_256`` is the FIPS SHA-3, not Ethereum's keccak-256 (different padding), so the
function selectors and the event topic are precomputed constants (tests check them against
web3's keccak). The origin id keccak256(origin) binds the receipt to the checkpoint's origin
line; a small keccak-f[1600] is included so the auditor recomputes it instead of trusting the
bundle's ``origin_id``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

# keccak256("rootAt(bytes32,uint64)")[:4] and keccak256("latest(bytes32)")[:4]
SELECTOR_ROOT_AT = bytes.fromhex("930b6ace")
SELECTOR_LATEST = bytes.fromhex("79feb107")
# keccak256("Anchored(bytes32,uint64,bytes32,bytes32)")
ANCHORED_TOPIC = bytes.fromhex(
    "e0fefe2c385c268b407afff2ad80d6521edf6409537f95b897f228a08e900205")

RPC_TIMEOUT_SECONDS = 20.0

# --- keccak-256 (Ethereum's original Keccak padding, 0x01; FIPS SHA-3 uses 0x06) ---------------

_ROUND_CONSTANTS = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)
_ROTATIONS = (
    (0, 36, 3, 41, 18), (1, 44, 10, 45, 2), (62, 6, 43, 15, 61),
    (28, 55, 25, 21, 56), (27, 20, 39, 8, 14),
)
_MASK = (1 << 64) - 1
_RATE = 136  # bytes, for a 256-bit output


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (64 - shift))) & _MASK if shift else value


def _keccak_f1600(lanes: list[list[int]]) -> None:
    for rc in _ROUND_CONSTANTS:
        c = [lanes[x][0] ^ lanes[x][1] ^ lanes[x][2] ^ lanes[x][3] ^ lanes[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rotl(c[(x + 1) % 5], 1) for x in range(5)]
        for x in range(5):
            for y in range(5):
                lanes[x][y] ^= d[x]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                b[y][(2 * x + 3 * y) % 5] = _rotl(lanes[x][y], _ROTATIONS[x][y])
        for x in range(5):
            for y in range(5):
                lanes[x][y] = b[x][y] ^ ((~b[(x + 1) % 5][y]) & b[(x + 2) % 5][y])
        lanes[0][0] ^= rc


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak-256 of ``data``."""
    padded = bytearray(data) + b"\x01" + b"\x00" * ((-len(data) - 1) % _RATE)
    padded[-1] |= 0x80
    lanes = [[0] * 5 for _ in range(5)]
    for start in range(0, len(padded), _RATE):
        block = padded[start:start + _RATE]
        for i in range(_RATE // 8):
            lanes[i % 5][i // 5] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        _keccak_f1600(lanes)
    out = b"".join(lanes[i % 5][i // 5].to_bytes(8, "little") for i in range(4))
    return out


def origin_id(origin: str) -> bytes:
    """The contract's key for a log: keccak256 of the checkpoint origin line (UTF-8)."""
    return keccak256(origin.encode("utf-8"))


# --- ABI -----------------------------------------------------------------------------------------

def encode_root_at_call(origin_key: bytes, size: int) -> bytes:
    """Calldata of ``rootAt(bytes32 origin, uint64 size)``."""
    if len(origin_key) != 32 or not 0 <= size < 2**64:
        raise ValueError("origin id must be 32 bytes and size a uint64")
    return SELECTOR_ROOT_AT + origin_key + size.to_bytes(32, "big")


def encode_latest_call(origin_key: bytes) -> bytes:
    """Calldata of ``latest(bytes32 origin)``."""
    if len(origin_key) != 32:
        raise ValueError("origin id must be 32 bytes")
    return SELECTOR_LATEST + origin_key


def decode_words(data: bytes, count: int) -> list[bytes]:
    """Split a static ABI return value into its first ``count`` 32-byte words."""
    if len(data) < 32 * count:
        raise ValueError(f"expected {count} ABI words, got {len(data)} bytes")
    return [data[32 * i:32 * i + 32] for i in range(count)]


# --- JSON-RPC ------------------------------------------------------------------------------------

class RpcError(Exception):
    pass


def rpc_call(rpc_url: str, method: str, params: list[Any]) -> Any:
    """One JSON-RPC 2.0 call over HTTP(S); raises RpcError on transport or node errors."""
    if not rpc_url.startswith(("http://", "https://")):
        raise RpcError(f"RPC URL must be http(s): {rpc_url}")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(rpc_url, data=body,  # noqa: S310 - scheme checked above
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_SECONDS) as response:  # noqa: S310
            reply = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RpcError(f"{method}: {exc}") from exc
    if "error" in reply and reply["error"] is not None:
        raise RpcError(f"{method}: {reply['error']}")
    return reply.get("result")


def _hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _same_hex(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower().removeprefix("0x") == \
        b.lower().removeprefix("0x")


# --- checks --------------------------------------------------------------------------------------

def anchored_root_at(rpc_url: str, contract: str, origin_key: bytes,
                     size: int) -> tuple[bytes, bytes]:
    """(root, checkpoint hash) the contract holds for (origin id, size); zeros when none."""
    result = rpc_call(rpc_url, "eth_call", [
        {"to": contract, "data": "0x" + encode_root_at_call(origin_key, size).hex()}, "latest"])
    root, checkpoint_hash = decode_words(_hex_bytes(result or "0x"), 2)
    return root, checkpoint_hash


def _receipt_problems(anchor: dict[str, Any], label: str, rpc_url: str, origin_key: bytes,
                      root: bytes, checkpoint_hash: bytes) -> list[str]:
    tx_hash = anchor.get("tx_hash") or anchor.get("tx_id")
    receipt = rpc_call(rpc_url, "eth_getTransactionReceipt", [tx_hash])
    if receipt is None:
        return [f"{label}: transaction {tx_hash} is not on this chain"]
    problems = []
    if int(receipt.get("status", "0x0"), 16) != 1:
        problems.append(f"{label}: transaction {tx_hash} reverted (status {receipt.get('status')})")
    if int(receipt["blockNumber"], 16) != int(anchor["block_number"]):
        problems.append(f"{label}: transaction is in block {int(receipt['blockNumber'], 16)}, "
                        f"receipt says {anchor['block_number']}")
    if not _same_hex(receipt.get("blockHash"), anchor.get("block_hash")):
        problems.append(f"{label}: block hash {receipt.get('blockHash')} differs from receipt's "
                        f"{anchor.get('block_hash')}")
    if not _same_hex(receipt.get("to"), anchor["contract"]):
        problems.append(f"{label}: transaction was sent to {receipt.get('to')}, "
                        f"not the contract {anchor['contract']}")
    if not _has_anchored_event(receipt, anchor["contract"], origin_key, int(anchor["size"]),
                               root, checkpoint_hash):
        problems.append(f"{label}: transaction emitted no matching Anchored event")
    block = rpc_call(rpc_url, "eth_getBlockByNumber", [receipt["blockNumber"], False])
    if block is None or not _same_hex(block.get("hash"), receipt.get("blockHash")):
        problems.append(f"{label}: block {int(receipt['blockNumber'], 16)} is not canonical")
    return problems


def _has_anchored_event(receipt: dict[str, Any], contract: str, origin_key: bytes, size: int,
                        root: bytes, checkpoint_hash: bytes) -> bool:
    expected_topics = [ANCHORED_TOPIC, origin_key, size.to_bytes(32, "big")]
    for log in receipt.get("logs") or []:
        if not _same_hex(log.get("address"), contract):
            continue
        topics = [_hex_bytes(t) for t in log.get("topics") or []]
        if topics == expected_topics and _hex_bytes(log.get("data", "0x")) == root + \
                checkpoint_hash:
            return True
    return False


def check_anchor(anchor: dict[str, Any], rpc_url: str, label: str = "anchor") -> list[str]:
    """Problems with one EVM anchor receipt; empty when the chain confirms it exactly."""
    try:
        origin_key = origin_id(anchor["origin"])
        if "origin_id" in anchor and _hex_bytes(anchor["origin_id"]) != origin_key:
            return [f"{label}: origin_id is not keccak256 of origin {anchor['origin']!r}"]
        root = base64.b64decode(anchor["root"], validate=True)
        checkpoint_hash = bytes.fromhex(anchor["checkpoint_sha256"])
        size = int(anchor["size"])
        problems: list[str] = []
        chain_id = int(rpc_call(rpc_url, "eth_chainId", []), 16)
        if chain_id != int(anchor["chain_id"]):
            problems.append(f"{label}: node is on chain {chain_id}, anchor names "
                            f"{anchor['chain_id']}")
        code = rpc_call(rpc_url, "eth_getCode", [anchor["contract"], "latest"])
        if not code or code == "0x":
            return [*problems, f"{label}: no contract at {anchor['contract']}"]
        held_root, held_hash = anchored_root_at(rpc_url, anchor["contract"], origin_key, size)
        if held_root != root:
            problems.append(f"{label}: contract holds root {held_root.hex()} at size {size}, "
                            f"receipt says {root.hex()}")
        if held_hash != checkpoint_hash:
            problems.append(f"{label}: contract holds checkpoint hash {held_hash.hex()} at size "
                            f"{size}, receipt says {checkpoint_hash.hex()}")
        problems += _receipt_problems(anchor, label, rpc_url, origin_key, root, checkpoint_hash)
        return problems
    except RpcError as exc:
        return [f"{label}: RPC failed: {exc}"]
    except (KeyError, TypeError, ValueError) as exc:
        return [f"{label}: malformed anchor receipt: {exc!r}"]


def check_anchors(bundle: dict[str, Any], rpc_url: str) -> list[str]:
    """Problems with every EVM anchor in ``bundle["anchors"]``; empty when all hold on chain.

    Anchors of other backends (the local journal, ChainMaker) cannot be checked over Ethereum
    JSON-RPC and are skipped; a bundle with no EVM anchor at all is itself reported, since the
    caller asked for an on-chain check.
    """
    anchors = bundle.get("anchors")
    if anchors is None and isinstance(bundle.get("anchor"), dict):
        anchors = [bundle["anchor"]]
    evm = [a for a in anchors or [] if isinstance(a, dict) and a.get("backend") == "evm"]
    if not evm:
        return ["bundle carries no EVM anchor to check on chain"]
    problems: list[str] = []
    for index, anchor in enumerate(evm):
        problems += check_anchor(anchor, rpc_url, label=f"anchor[{index}] size "
                                                        f"{anchor.get('size')}")
    return problems
