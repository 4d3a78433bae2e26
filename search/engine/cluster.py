"""Build, start, control and stop the loopback OpenSearch cluster of ``opensearch-launcher/``.

Why a module and not a shell script: the tests (a session-scoped fixture), the fault tests
(stop one node, stop the whole cluster and start it again on the same data) and ``make
opensearch`` all need the same steps, with deadlines instead of sleeps. The launcher is a Maven
project; it is built once (``mvn package``, jars from Maven Central into Maven's cache) and
rebuilt only when its pom or source change, so later starts take seconds.

Run by hand: ``python -m search.engine.cluster --data var/opensearch`` (what ``make opensearch``
does) starts the cluster in the foreground and prints the URL to put in ``NDR_SEARCH_URL``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LAUNCHER_DIR = Path(__file__).resolve().parent / "opensearch-launcher"
MAIN_CLASS = "org.ndr.opensearch.Launcher"
TAG = "NDR-OPENSEARCH "
DEFAULT_HEAP = os.environ.get("NDR_OPENSEARCH_HEAP", "1g")
# Tests want the cluster up fast and live for minutes: the C1 compiler alone and the serial
# collector start a 3-node JVM in about half the time on this 2-core machine (measured 27 s
# against 62 s under the same load). A long-running cluster (`make opensearch`) uses the JVM's
# defaults (C2, G1) for steady-state speed.
FAST_START = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
STEADY = ["-XX:+UseG1GC"]


class ClusterError(RuntimeError):
    """The cluster could not be built, started or controlled (the message says why)."""


def _java() -> str:
    java = os.environ.get("NDR_JAVA") or shutil.which("java")
    if not java:
        raise ClusterError("java is not installed (Debian: apt-get install default-jdk-headless)")
    return java


def _source_digest(project: Path, maven_args: list[str]) -> str:
    """What the build depends on: the pom, the Java sources, and how Maven is called."""
    digest = hashlib.sha256(" ".join(maven_args).encode())
    for path in sorted([project / "pom.xml", *(project / "src").rglob("*.java")]):
        digest.update(str(path.relative_to(project)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(project: Path = LAUNCHER_DIR, *, maven_args: list[str] | None = None,
          force: bool = False, log: IO[str] | None = None) -> list[str]:
    """Build the launcher if its pom/source changed; return the java class path.

    ``maven_args`` (default: ``$NDR_MAVEN_ARGS``) lets a caller use another local repository,
    e.g. ``-Dmaven.repo.local=/tmp/m2-cold`` to measure a cold build."""
    if maven_args is None:
        maven_args = os.environ.get("NDR_MAVEN_ARGS", "").split()
    target = project / "target"
    stamp, classpath_file = target / "ndr-build.sha256", target / "classpath.txt"
    jar = target / "opensearch-launcher-1.0.0.jar"
    digest = _source_digest(project, maven_args)
    fresh = (not force and stamp.exists() and stamp.read_text().strip() == digest
             and classpath_file.exists() and jar.exists())
    if not fresh:
        mvn = shutil.which("mvn")
        if not mvn:
            raise ClusterError("mvn is not installed (Debian: apt-get install maven)")
        command = [mvn, "-B", "-q", *maven_args, "package"]
        done = subprocess.run(command, cwd=project, capture_output=True, text=True,  # noqa: S603
                              check=False)
        if log is not None:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise ClusterError(f"building the OpenSearch launcher failed ({' '.join(command)}):"
                               f"\n{(done.stdout + done.stderr)[-4000:]}")
        stamp.write_text(digest)
    deps = classpath_file.read_text().strip()
    missing = [p for p in deps.split(os.pathsep) if p and not Path(p).exists()]
    if missing:
        if force:
            raise ClusterError(f"the launcher's class path names missing jars: {missing[:3]}")
        return build(project, maven_args=maven_args, force=True, log=log)
    return [str(jar), *deps.split(os.pathsep)]


@dataclass
class NodeInfo:
    name: str
    http: int
    transport: int
    running: bool


@dataclass
class OpenSearchCluster:
    """A launcher process and its nodes. ``start`` waits (with a deadline) for the ready line;
    ``stop_node``/``start_node`` take one node away and bring it back; ``stop`` ends it all.
    Ports are kept across a full ``stop``/``start`` so client URLs stay valid."""

    data_dir: Path
    nodes: int = 3
    heap: str = DEFAULT_HEAP
    cluster_name: str = "ndr-opensearch"
    log_path: Path | None = None
    maven_args: list[str] | None = None
    project: Path = LAUNCHER_DIR
    jvm_options: list[str] = field(default_factory=lambda: list(
        os.environ.get("NDR_OPENSEARCH_JAVA_OPTS", "").split() or FAST_START))
    node_info: list[NodeInfo] = field(default_factory=list)
    version: str = ""
    start_seconds: float = 0.0
    _process: subprocess.Popen[str] | None = None
    _events: queue.Queue[dict[str, object]] = field(default_factory=queue.Queue)
    _reader: threading.Thread | None = None

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{n.http}" for n in self.node_info]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (what ``NDR_SEARCH_URL`` takes)."""
        return ",".join(self.urls)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 300.0) -> None:
        """Build if needed, start the launcher and wait for every node and yellow health."""
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path or self.data_dir / "launcher.log"
        log = log_path.open("a", encoding="utf-8")
        classpath = build(self.project, maven_args=self.maven_args, log=log)
        command = [_java(), f"-Xms{self.heap}", f"-Xmx{self.heap}", *self.jvm_options,
                   "-Dfile.encoding=UTF-8", "-Djava.awt.headless=true",
                   "-Dopensearch.set.netty.runtime.available.processors=false",
                   "-cp", os.pathsep.join(classpath), MAIN_CLASS,
                   "--data", str(self.data_dir), "--nodes", str(self.nodes),
                   "--cluster-name", self.cluster_name]
        if self.node_info:  # a restart: the same ports as before
            command += ["--http-ports", ",".join(str(n.http) for n in self.node_info),
                        "--transport-ports", ",".join(str(n.transport) for n in self.node_info)]
        self._events = queue.Queue()
        self._process = subprocess.Popen(  # noqa: S603
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8", bufsize=1, start_new_session=True)
        self._reader = threading.Thread(target=self._read, args=(self._process, log),
                                        name="opensearch-launcher-output", daemon=True)
        self._reader.start()
        event = self._expect({"ready"}, deadline=began + timeout)
        self.version = str(event.get("version", ""))
        self.start_seconds = time.monotonic() - began

    def _read(self, process: subprocess.Popen[str], log: IO[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(TAG):
                try:
                    event = json.loads(line[len(TAG):])
                except ValueError:
                    event = {"event": "error", "message": f"unreadable line: {line!r}"}
                self._events.put(event)
                log.write(line)
            else:
                log.write(line)
            log.flush()
        self._events.put({"event": "eof"})
        log.close()

    def _expect(self, wanted: set[str], *, deadline: float) -> dict[str, object]:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise ClusterError(f"OpenSearch launcher: no {sorted(wanted)} before the "
                                   f"deadline; see {self.data_dir / 'launcher.log'}")
            try:
                event = self._events.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            kind = event.get("event")
            if kind in {"error", "eof"}:
                if kind == "eof":
                    self._process = None
                raise ClusterError(f"OpenSearch launcher: {event.get('message', kind)}; see "
                                   f"{self.data_dir / 'launcher.log'}")
            if kind in wanted:
                nodes = event.get("nodes")
                if isinstance(nodes, list):
                    self.node_info = [NodeInfo(str(n["name"]), int(n["http"]),
                                               int(n["transport"]), bool(n["running"]))
                                      for n in nodes]
                return event

    def _command(self, line: str, wanted: set[str], timeout: float) -> dict[str, object]:
        if not self.running or self._process is None or self._process.stdin is None:
            raise ClusterError("the OpenSearch launcher is not running")
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._expect(wanted, deadline=time.monotonic() + timeout)

    def stop_node(self, index: int, *, timeout: float = 120.0) -> str:
        """Take node ``index`` away (its transport and HTTP ports close, as at a crash);
        returns the cluster status the others report."""
        return str(self._command(f"stop {index}", {"stopped"}, timeout).get("status"))

    def start_node(self, index: int, *, timeout: float = 180.0) -> str:
        """Bring node ``index`` back on its data and ports; waits for it to rejoin."""
        return str(self._command(f"start {index}", {"started"}, timeout).get("status"))

    def status(self, *, timeout: float = 60.0) -> str:
        return str(self._command("status", {"status"}, timeout).get("status"))

    def stop(self, *, timeout: float = 120.0) -> None:
        """Stop every node and the JVM (data stays in ``data_dir``)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None and process.stdin is not None:
            try:
                process.stdin.write("quit\n")
                process.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._reader is not None:
            self._reader.join(10)
        self._process = None

    def kill(self) -> None:
        """SIGKILL the launcher JVM (every node at once, no goodbye)."""
        process = self._process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        self._process = None

    def health(self, *, timeout: float = 5.0) -> dict[str, object]:
        """``_cluster/health`` from the first node that answers."""
        last: Exception | None = None
        for url in self.urls:
            try:
                with urllib.request.urlopen(f"{url}/_cluster/health",  # noqa: S310
                                            timeout=timeout) as response:
                    return dict(json.load(response))
            except OSError as exc:
                last = exc
        raise ClusterError(f"no node answered _cluster/health: {last}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the loopback OpenSearch cluster in the "
                                     "foreground (Ctrl-C stops it; data stays in --data).")
    parser.add_argument("--data", type=Path, default=Path("var/opensearch"))
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--heap", default=DEFAULT_HEAP)
    parser.add_argument("--build-only", action="store_true",
                        help="build the launcher (downloading jars on first use) and exit")
    args = parser.parse_args(argv)
    if args.build_only:
        began = time.monotonic()
        build(log=sys.stderr)
        print(f"OpenSearch launcher built in {time.monotonic() - began:.1f} s")
        return 0
    cluster = OpenSearchCluster(args.data.resolve(), nodes=args.nodes, heap=args.heap,
                                jvm_options=STEADY)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster.start()
    print(f"OpenSearch {cluster.version}: {args.nodes} nodes up in {cluster.start_seconds:.1f} s"
          f" (log: {args.data / 'launcher.log'})")
    print(f"  NDR_SEARCH_BACKEND=opensearch NDR_SEARCH_URL={cluster.url}")
    sys.stdout.flush()
    while not stop.wait(1.0):
        if not cluster.running:
            print("the OpenSearch launcher exited", file=sys.stderr)
            return 1
    cluster.stop()
    print("OpenSearch stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
