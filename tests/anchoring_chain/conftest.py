"""Fixtures for the anchoring tests: a real database, real signed checkpoints, real EVM nodes.

The checkpoint feed below is deliberately independent of the log engineer's code: it builds
RFC 9162 roots and C2SP signed notes from first principles with ``cryptography``, so a mistake
in either side cannot hide in both.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from anchoring.anchor_store import AnchorBase
from registry.database import Database

REPO = Path(__file__).resolve().parents[2]
GANACHE = REPO / "node_modules" / ".bin" / "ganache"
# A throwaway key that funds and owns everything on the test nodes (never a real chain).
DEPLOYER_KEY = "0x" + hashlib.sha256(b"ndr anchoring test deployer").hexdigest()


def missing_tool(reason: str) -> None:
    """Skip locally when a tool is absent, but fail under CI: CI must exercise everything."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- checkpoints ---------------------------------------------------------------------------------

def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH over leaf hashes (largest power of two smaller than n splits)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:split]) +
                          merkle_root(leaves[split:])).digest()


@dataclass(frozen=True)
class TestCheckpoint:
    origin: str
    size: int
    root: bytes
    note: str
    made_at: float


class CheckpointFeed:
    """An in-memory log that signs a C2SP checkpoint note whenever it grows."""

    def __init__(self, origin: str = "registry.example.gov.cn/log") -> None:
        self.origin = origin
        self.key = Ed25519PrivateKey.generate()
        public = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(origin.encode() + b"\n\x01" + public).digest()[:4]
        self.leaves: list[bytes] = []
        self.checkpoints: list[TestCheckpoint] = []

    def grow(self, count: int = 1) -> TestCheckpoint:
        for _ in range(count):
            entry = json.dumps({"v": 1, "n": len(self.leaves)}).encode()
            self.leaves.append(leaf_hash(entry))
        root = merkle_root(self.leaves)
        body = f"{self.origin}\n{len(self.leaves)}\n{base64.b64encode(root).decode()}\n"
        signature = self.key.sign(body.encode())
        note = body + "\n" + f"— {self.origin} " + \
            base64.b64encode(self.key_id + signature).decode() + "\n"
        checkpoint = TestCheckpoint(self.origin, len(self.leaves), root, note, time.time())
        self.checkpoints.append(checkpoint)
        return checkpoint

    def latest(self, _session: Session) -> TestCheckpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None


@pytest.fixture
def feed() -> CheckpointFeed:
    return CheckpointFeed()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    AnchorBase.metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'anchors.db'}")
    AnchorBase.metadata.create_all(database.engine)
    yield database
    database.dispose()


# --- a local EVM node from npm (ganache) --------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc(url: str, method: str, params: list | None = None) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                       "params": params or []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


class GanacheNode:
    """A ganache process on 127.0.0.1; ``stop``/``start`` keep the chain unless ``fresh``."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "ganache.log"

    def start(self, *, fresh: bool = False) -> None:
        chain_dir = self.data_dir / "chain"
        if fresh and chain_dir.exists():
            shutil.rmtree(chain_dir)
        chain_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(GANACHE), "--server.host", "127.0.0.1", "--server.port", str(self.port),
             "--wallet.accounts", f"{DEPLOYER_KEY},0x3635C9ADC5DEA00000",
             "--chain.chainId", "1337", "--chain.hardfork", "shanghai",
             "--database.dbPath", str(chain_dir), "--logging.quiet"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        wait_until(self.ready, 60, f"ganache RPC on {self.url}", interval=0.1)

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"ganache exited: {self.log_path.read_text()[-2000:]}")
        try:
            return rpc(self.url, "eth_chainId") == hex(1337)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            rpc(self.url, "evm_mine")


@pytest.fixture
def ganache(tmp_path: Path) -> Iterator[GanacheNode]:
    if not GANACHE.exists() or shutil.which("node") is None:
        missing_tool("ganache is not installed: run `npm ci` at the repository root")
    node = GanacheNode(tmp_path / "ganache")
    node.data_dir.mkdir()
    node.start(fresh=True)
    try:
        yield node
    finally:
        node.stop()
