"""The embedded default engine: a Tantivy index under ``var/``, fed from the change feed.

Why Tantivy: a Lucene-class engine (BM25, posting lists, fast-field aggregations) in a wheel,
so the one-machine setup installs nothing, and ranking, counting and facets are a real
engine's work instead of SQL scoring every match (issue 11). This module only translates a
`search.query_plan.QueryPlan`; nothing here decides what matches or how it ranks.

Writes: ``index``/``remove`` append rows to the feed in the catalogue transaction
(`search.feed`). One process per index holds the feed lease and applies rows after the
index's position; the position is stored *in the index* (a meta document replaced in the same
Tantivy commit as the documents), so a crash anywhere — even kill -9 between the Tantivy
commit and the database update — loses nothing: the next holder replays from the index's own
position. A brand-new index (or one built under an older field layout) is first filled from
the catalogue (``source``), positioned at the feed head read in the same transaction.

Reads: every process opens the same directory. Before a search the caller's transaction reads
the feed head (one index lookup); if the searcher is behind, the index is reloaded, or — in
the process holding the lease, and in single-process setups — the pending rows are applied
first; otherwise the search waits for the indexer, up to ``freshness_wait`` (5 s; it ends as
soon as the index has the changes). So a search sees every catalogue change committed before
it started — or, with ``max_lag`` (the registry's ``NDR_SEARCH_MAX_LAG_MS``, 1 s), in a worker
that does not apply the feed itself, every change committed at least that long before: under a
stream of publishes a search then never waits on the indexer's next commit.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import tantivy
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from search import feed, suggest
from search.documents import (
    FACET_SOURCES,
    Hit,
    SearchDocument,
    SearchQuery,
    SearchResults,
    Viewer,
    facet_values,
    modified_key,
    title_key,
)
from search.highlight import highlights_for
from search.query_plan import (
    FALLBACK_PER_TERM,
    AllOf,
    AnyOf,
    Filter,
    Match,
    QueryPlan,
    Range,
    Terms,
    TextPlan,
    build_plan,
    encode_cursor,
    index_fields,
    issued_day,
    modified_stamp,
    sort_values,
    text_field_names,
)

log = logging.getLogger(__name__)

META_ID = "\x00feed"
LAYOUT_VERSION = 3  # 2: titles left out of the suggest keys; 3: spelling vocabulary
WRITER_HEAP = 128_000_000
BATCH = 2000
COMMIT_EVERY = 0.1  # seconds between index commits at the least (see index_step)
POSITION_EVERY = 1.0  # seconds between position updates while the feed streams in
SessionFactory = Callable[[], contextlib.AbstractContextManager[Session]]
DocumentSource = Callable[[Session], Iterable[SearchDocument]]


def _layout() -> dict[str, Any]:
    """What the schema depends on: a different layout means a rebuild, never a mixed index."""
    return {"version": LAYOUT_VERSION, "text": text_field_names(),
            "facets": sorted(FACET_SOURCES)}


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", fast=True)
    for name in ("state", "visibility", "organization_id"):
        sb.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name in text_field_names():
        # words need only frequencies; fragments need positions for phrases
        sb.add_text_field(name, tokenizer_name="ws",
                          index_option="freq" if name.endswith("_w") else "position")
    for facet in FACET_SOURCES:
        sb.add_text_field(f"f_{facet}", tokenizer_name="raw", fast=True, index_option="basic")
    sb.add_unsigned_field("modified", indexed=True, fast=True)
    sb.add_unsigned_field("issued", indexed=True, fast=True)
    sb.add_text_field("sort_modified", tokenizer_name="raw", fast=True, index_option="basic")
    sb.add_text_field("sort_title", tokenizer_name="raw", fast=True, index_option="basic")
    sb.add_text_field("suggest", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("vocab", tokenizer_name="raw", index_option="basic")
    sb.add_unsigned_field("version", stored=True, fast=True)
    sb.add_unsigned_field("position", stored=True)
    sb.add_bytes_field("shown", stored=True)
    return sb.build()


_FILTER_FIELDS = {"state": "state", "visibility": "visibility",
                  "organization_id": "organization_id",
                  **{facet: f"f_{facet}" for facet in FACET_SOURCES}}


class TantivyEngine:
    """A `search.SearchBackend` over a Tantivy directory (see the module docstring)."""

    name = "tantivy"
    updates_only_write = True  # a change-feed row; the indexer applies it

    def __init__(self, path: str | Path, *, lease_ttl: float = 10.0,
                 freshness_wait: float = 5.0, batch: int = BATCH,
                 commit_every: float = COMMIT_EVERY, max_lag: float = 0.0) -> None:
        self.path = Path(path)
        self.max_lag = max_lag
        self._heads: collections.deque[tuple[float, int]] = collections.deque()
        self._last_head: tuple[float, int] | None = None  # (when read, head): the newest read
        self.commit_every = commit_every
        self._last_commit = -1.0e9
        self.lease_ttl = lease_ttl
        self.freshness_wait = freshness_wait
        self.batch = batch
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.schema = build_schema()
        self._read_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._writer: tantivy.IndexWriter | None = None
        self._write_sessions: SessionFactory | None = None
        self._read_sessions: SessionFactory | None = None
        self._source: DocumentSource | None = None
        self._lease_renewed = -1.0e9  # time.monotonic() of our last successful lease write
        self._standby_until = -1.0e9  # see stand_by
        self._lease_seen_taken = -1.0e9  # see _may_index_inline
        self._position_recorded = (-1, -1.0e9)  # (position, monotonic time) last published
        self.consumer, self._index = self._open()
        self._loaded_signature = self._commit_signature()
        self._searcher, self._position = self._load_searcher()

    # ---------------------------------------------------------------- opening

    def _open(self) -> tuple[str, tantivy.Index]:
        """Open (or create) the directory; a layout change starts a new, empty index under a
        new consumer name, which the indexer then fills from the catalogue."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.parent / f".{self.path.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            marker = self.path / "ndr-index.json"
            meta: dict[str, Any] = {}
            if marker.exists():
                meta = json.loads(marker.read_text())
            if meta.get("layout") != _layout():
                if meta:
                    log.warning("search index layout changed: rebuilding %s", self.path)
                for child in self.path.iterdir():
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
                meta = {"layout": _layout(), "consumer": f"tantivy:{uuid.uuid4().hex}"}
                tmp = marker.with_suffix(".tmp")
                tmp.write_text(json.dumps(meta))
                tmp.replace(marker)
            index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        index.register_tokenizer(
            "ws", tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
        return str(meta["consumer"]), index

    def attach(self, write_sessions: SessionFactory, source: DocumentSource | None = None,
               read_sessions: SessionFactory | None = None) -> None:
        """Let this process apply the feed (``write_sessions``: e.g. Database.write) and fill a
        new index from the catalogue (``source``: every current search document).
        ``read_sessions`` (e.g. Database.read) serve the indexer's reads — the lease check of
        a process that does not hold it, the feed rows — so they never queue for the
        catalogue's write lock behind publishes."""
        self._write_sessions = write_sessions
        self._read_sessions = read_sessions or write_sessions
        self._source = source
        try:
            with write_sessions() as session:
                feed.register(session, self.consumer, int(time.time() * 1000))
        except SQLAlchemyError:  # not migrated yet (e.g. `ndr init`); the lease registers it
            log.debug("search feed consumer not registered yet", exc_info=True)

    # ---------------------------------------------------------------- the SearchBackend API

    def index(self, session: Session, docs: list[SearchDocument]) -> None:
        feed.publish(session, docs, [])

    def remove(self, session: Session, dataset_ids: list[str]) -> None:
        feed.publish(session, [], dataset_ids)

    def count(self, session: Session) -> int:
        searcher = self._fresh_searcher(session)
        return int(searcher.num_docs) - (1 if self._current()[1] >= 0 else 0)

    def search(self, session: Session, query: SearchQuery) -> SearchResults:
        plan = build_plan(query)
        searcher = self._fresh_searcher(session)
        results = self._run(searcher, plan, plan.text)
        if results.total or plan.text is None:
            return _with(results, truncated=plan.truncated)
        # Nothing matched every word: help (issue 11, class 7) — a spelling suggestion, the
        # looser query of finer words and its results, related topics.
        loose = self._run(searcher, plan, plan.fallback) if plan.fallback else None
        found = loose if loose is not None and loose.total else None
        related = self._related(searcher, plan, found)
        spelling = self._spelling(searcher, plan)
        base = found or results
        assert plan.fallback is not None or found is None
        return _with(base, truncated=plan.truncated,
                     loosened_query=" ".join(t.surface for t in plan.fallback.terms)
                     if found is not None and plan.fallback else None,
                     suggestion=spelling or (related[0] if related and found is None
                                             else None),
                     related=related)

    def suggest(self, session: Session, prefix: str, viewer: Viewer, limit: int = 10
                ) -> list[suggest.Suggestion]:
        """Keywords, departments and topics whose typed form starts with ``prefix`` (most
        common first), then titles of the best matches of ``prefix`` as a query — only what
        ``viewer`` may see."""
        key = suggest.normalise(prefix)[: suggest.MAX_PREFIX]
        if len(key) < suggest.MIN_PREFIX:
            return []
        searcher = self._fresh_searcher(session)
        visible = self._filter(build_plan(SearchQuery(viewer=viewer)).filter)
        found = searcher.terms_with_prefix("suggest", key, filter_query=visible,
                                           limit=limit * 4)
        best: dict[tuple[str, str], int] = {}
        for term, count in found:
            parsed = suggest.parse_entry(term)
            if parsed is not None and count > 0:
                best[parsed] = max(best.get(parsed, 0), int(count))
        ranked = sorted(best.items(), key=lambda item: (-item[1], len(item[0][0]), item[0]))
        out = [suggest.Suggestion(text=text, kind=kind, count=count)
               for (text, kind), count in ranked[: max(limit // 2, limit - 5)]]
        titles = self._titles(searcher, build_plan(SearchQuery(
            q=prefix[: suggest.MAX_PREFIX], viewer=viewer, limit=limit)), key)
        seen = {s.text for s in out}
        for title in titles:
            if len(out) >= limit:
                break
            if title not in seen:
                seen.add(title)
                out.append(suggest.Suggestion(text=title, kind="title", count=1))
        return out

    def _titles(self, searcher: tantivy.Searcher, plan: QueryPlan, typed: str) -> list[str]:
        """Titles of the best matches (the one containing what was typed, if any)."""
        if plan.text is None:
            return []
        found = searcher.search(self._query(plan, plan.text), plan.limit, count=False)
        titles: list[str] = []
        for _, address in found.hits:
            shown = json.loads(searcher.doc(address).get_first("shown"))
            options = [t for t in (shown.get("title_zh"), shown.get("title_en")) if t]
            containing = [t for t in options if typed.split(" ")[0] in t.casefold()]
            if containing or options:
                titles.append((containing or options)[0])
        return titles

    def indexed_versions(self, session: Session | None = None) -> dict[str, int]:
        """dataset id → indexed version (for `ndr search check`)."""
        if session is not None:
            self._fresh_searcher(session)
        searcher = self._current()[0]
        total = int(searcher.num_docs)
        result = searcher.search(tantivy.Query.all_query(), max(total, 1))
        versions: dict[str, int] = {}
        for _, address in result.hits:
            doc = searcher.doc(address)
            dataset_id = doc.get_first("id")
            if dataset_id != META_ID:
                versions[dataset_id] = int(doc.get_first("version") or 0)
        return versions

    # ---------------------------------------------------------------- freshness

    def _current(self) -> tuple[tantivy.Searcher, int]:
        with self._read_lock:
            return self._searcher, self._position

    def _load_searcher(self) -> tuple[tantivy.Searcher, int]:
        searcher = self._index.searcher()
        found = searcher.search(tantivy.Query.term_query(self.schema, "id", META_ID), 1)
        position = -1  # never started: no meta document yet
        if found.hits:
            position = int(searcher.doc(found.hits[0][1]).get_first("position") or 0)
        return searcher, position

    def _commit_signature(self) -> tuple[int, int, int]:
        """Identifies the index's latest commit: Tantivy replaces ``meta.json`` (a new file) on
        every commit, so a stat — unlike a reload, which reads the segment list and opens a
        searcher — tells cheaply whether there is anything new to load."""
        try:
            stat = os.stat(self.path / "meta.json")
        except OSError:
            return (0, 0, 0)
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _reload_if_committed(self) -> int:
        """`reload` when another commit landed since the last one; else the known position.
        Waiting searches and the indexer's steps ask many times a second."""
        if self._commit_signature() == self._loaded_signature:
            return self._current()[1]
        return self.reload()

    def reload(self) -> int:
        """Pick up the latest commit (any process's); returns the index's feed position
        (-1 for an index that was never filled)."""
        signature = self._commit_signature()
        self._index.reload()
        searcher, position = self._load_searcher()
        with self._read_lock:
            self._loaded_signature = signature
            if position >= self._position:
                self._searcher, self._position = searcher, position
            return self._position

    def _fresh_searcher(self, session: Session) -> tantivy.Searcher:
        searcher, position = self._current()
        if _is_write_session(session):
            # Inside a catalogue write its own changes are not committed, so no indexer can
            # apply them yet (and on SQLite it would wait for this very transaction's lock).
            return searcher
        target = self._required_position(session)
        if position >= max(target, 0):
            return searcher
        if position < 0 and target == 0 and (self._write_sessions is None or self._source is None):
            return searcher  # nothing written yet and nothing here to fill the index from
        if self._reload_if_committed() >= max(target, 0):
            return self._current()[0]
        if self._write_sessions is not None:
            try:
                while self._current()[1] < max(target, 0):
                    if not self.index_step():
                        break
            except Exception:  # answer from the index as it is; the indexer loop retries
                log.exception("catching the search index up failed")
        deadline = time.monotonic() + self.freshness_wait
        while self._current()[1] < target and time.monotonic() < deadline:
            time.sleep(0.01)
            self._reload_if_committed()
        return self._current()[0]

    def _required_position(self, session: Session) -> int:
        """How far the index must be before this search may run: the feed head read now
        when ``max_lag`` is 0 or this process applies the feed itself (it catches up inline,
        so one-process setups read their own writes); otherwise the oldest head this process
        saw within the last ``max_lag`` seconds. Every change committed more than ``max_lag``
        ago is at or below any head read since, so the search still finds it; a search in a
        busy worker never waits on the indexer for younger changes (issue 11 asks for
        "searchable within 1 s"). A worker that has not searched for a while has no such
        head and waits for the one read now: remembering only heads from before the window
        let it answer from an index many seconds old.

        For the same reason the head need not be read by every search: one read less than
        half of ``max_lag`` ago already covers every change older than ``max_lag``. Under
        load that read was an eighth of a search's CPU, and a round trip."""
        if self.max_lag <= 0 or self._may_index_inline():
            return feed.head(session)
        now = time.monotonic()
        with self._read_lock:
            last = self._last_head
        if last is None or now - last[0] >= self.max_lag / 2:
            last = (now, feed.head(session))
        with self._read_lock:
            if self._last_head is None or last[0] > self._last_head[0]:
                self._last_head = last
            if not self._heads or last[1] > self._heads[-1][1]:
                self._heads.append(last)
            while self._heads and self._heads[0][0] < now - self.max_lag:
                self._heads.popleft()
            return self._heads[0][1] if self._heads else last[1]

    def stand_by(self, seconds: float) -> None:
        """Do not take the feed lease for ``seconds``: a dedicated indexer process (`ndr search
        indexer`, started beside gunicorn by deploy/gunicorn.conf.py) takes it first. A web
        worker's indexer thread shares its process's GIL with the request threads; under
        load it fell behind and every search waited for it. The workers stay standing by:
        should that process die, one of them takes the lease once it expires."""
        self._standby_until = time.monotonic() + seconds

    def _holds_lease_now(self) -> bool:
        return time.monotonic() - self._lease_renewed < self.lease_ttl * 2 / 3

    def _may_index_inline(self) -> bool:
        """Whether a search here may catch the index up itself: this process holds the feed
        lease, or nobody else does and it is not standing by. Then the search waits for the
        head read now, so a one-process set-up (tests, `ndr` commands, a single worker) reads
        its own writes at once. Seeing another holder is remembered for a third of the lease's
        term: workers beside a dedicated indexer then read the lease table seldom."""
        if self._holds_lease_now():
            return True
        if self._write_sessions is None or time.monotonic() < self._standby_until:
            return False
        now = time.monotonic()
        if now - self._lease_seen_taken < self.lease_ttl / 3:
            return False
        assert self._read_sessions is not None
        with self._read_sessions() as session:
            taken = feed.lease_taken_by_other(session, self.consumer, self.holder,
                                              int(time.time() * 1000))
        if taken:
            self._lease_seen_taken = now
        return not taken

    # ---------------------------------------------------------------- the indexer

    def index_step(self) -> int | None:
        """Apply up to ``batch`` feed rows if this process holds (or can take) the feed lease.
        Returns the rows applied, or None while another process holds the lease."""
        if self._write_sessions is None:
            raise RuntimeError("attach() a write session factory before indexing")
        with self._write_lock:
            if time.monotonic() < self._standby_until and not self._holds_lease_now():
                return None  # leaving the lease to the dedicated indexer process at first
            if not self._hold_lease():
                self._close_writer()
                return None
            writer = self._open_writer()
            position = self._reload_if_committed()
            if position < 0 and self._source is not None:
                return max(self._rebuild(writer), 1)  # "work was done": callers go on
            assert self._read_sessions is not None
            with self._read_sessions() as session:
                rows = feed.rows_after(session, max(position, 0), self.batch)
            pause = self._last_commit + self.commit_every - time.monotonic()
            if rows and pause > 0:
                # A Tantivy commit costs about 12 ms of CPU however few documents it holds
                # (a new segment, written and synced, then merged). Under a stream of
                # publishes, one commit per arriving row was most of the server's CPU; at
                # most one every `commit_every` seconds keeps a search's wait that short
                # while each commit carries everything that arrived meanwhile.
                time.sleep(pause)
                with self._read_sessions() as session:
                    rows = feed.rows_after(session, max(position, 0), self.batch)
            if not rows:
                self._publish_position(position, force=True)
                return 0
            self._apply(writer, rows)
            self._commit(writer, rows[-1].id)
            return len(rows)

    def _hold_lease(self) -> bool:
        """Renew the feed lease a third of the way through its term, not on every step: a
        renewal is a write transaction, and the indexer steps many times a second under load.
        Until then the last renewal keeps it ours (nobody may take an unexpired lease). A
        process without the lease first reads whether another's still runs, and writes only
        to take over an expired one."""
        assert self._write_sessions is not None and self._read_sessions is not None
        if time.monotonic() - self._lease_renewed < self.lease_ttl / 3:
            return True
        now_ms = int(time.time() * 1000)
        with self._read_sessions() as session:
            if feed.lease_taken_by_other(session, self.consumer, self.holder, now_ms):
                return False
        renewed_at = time.monotonic()
        with self._write_sessions() as session:
            held = feed.try_lease(session, self.consumer, self.holder, now_ms,
                                  int(self.lease_ttl * 1000))
        self._lease_renewed = renewed_at if held else -1.0e9
        return held

    def _publish_position(self, position: int, *, force: bool = False) -> None:
        """Tell the database how far the index is (for pruning, `/readyz` lag and metrics) at
        most every ``POSITION_EVERY`` seconds while rows stream in — each is a write — and
        whenever the indexer catches up. The index's own meta document stays authoritative."""
        assert self._write_sessions is not None
        last_position, last_time = self._position_recorded
        if position <= last_position or position < 0:
            return
        if not force and time.monotonic() - last_time < POSITION_EVERY:
            return
        with self._write_sessions() as session:
            feed.record_position(session, self.consumer, self.holder, position,
                                 int(time.time() * 1000))
        self._position_recorded = (position, time.monotonic())

    def _open_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._index.writer(WRITER_HEAP, 1)
        return self._writer

    def _close_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.rollback()
            self._writer = None

    def release(self) -> None:
        """Hand the lease back and close the writer (clean shutdown)."""
        with self._write_lock:
            self._close_writer()
            self._lease_renewed = -1.0e9
            if self._write_sessions is not None:
                with self._write_sessions() as session:
                    feed.release_lease(session, self.consumer, self.holder)

    def _apply(self, writer: tantivy.IndexWriter, rows: list[feed.FeedRow]) -> None:
        for row in rows:
            document = None
            if row.op == "index":
                try:
                    document = self.document(feed.decode_document(row.payload or ""))
                except (ValueError, TypeError, KeyError, AttributeError):
                    # Only corruption makes a row unreadable (the feed's writer is ours);
                    # stopping here would stop search for good. `ndr search check` shows it.
                    log.error("search feed row %s (%s) is unreadable; skipped", row.id,
                              row.dataset_id)
                    continue
            writer.delete_documents_by_term("id", row.dataset_id)
            if document is not None:
                writer.add_document(document)

    def _commit(self, writer: tantivy.IndexWriter, position: int) -> None:
        writer.delete_documents_by_term("id", META_ID)
        meta = tantivy.Document()
        meta.add_text("id", META_ID)
        meta.add_unsigned("position", position)
        writer.add_document(meta)
        writer.commit()
        self._last_commit = time.monotonic()
        self.reload()
        self._publish_position(position)

    def _rebuild(self, writer: tantivy.IndexWriter, workers: int = 1) -> int:
        """Fill a new index from the catalogue, positioned at the feed head read in the same
        transaction (rows after it are applied by the next steps). ``workers`` > 1 analyses
        in that many spawned processes (the analysis, not Tantivy, is the costly part)."""
        assert self._write_sessions is not None and self._source is not None
        count = 0
        writer.delete_all_documents()
        with self._write_sessions() as session:
            position = feed.head(session)
            documents = iter(self._source(session))
            if workers > 1:
                import multiprocessing

                with multiprocessing.get_context("spawn").Pool(workers) as pool:
                    for fields in pool.imap(analyse, documents, chunksize=256):
                        self.add_analysed(writer, fields)
                        count += 1
            else:
                for doc in documents:
                    self.add_analysed(writer, analyse(doc))
                    count += 1
        self._commit(writer, position)
        return count

    def rebuild(self, source: DocumentSource | None = None, *, workers: int = 1) -> int:
        """Rebuild from the catalogue now (``ndr search reindex``): readers keep the old
        index until the single commit at the end."""
        with self._write_lock:
            if not self._hold_lease():
                raise RuntimeError("another process holds the search feed lease")
            if source is not None:
                self._source = source
            return self._rebuild(self._open_writer(), workers)

    def run(self, stop: threading.Event, *, interval: float = 0.1) -> None:
        """The indexer loop: apply the feed while there is work, else poll every
        ``interval`` (a lease not held is retried at the same pace)."""
        try:
            while not stop.is_set():
                try:
                    applied = self.index_step()
                except Exception:  # a database or disk error must not end the loop
                    log.exception("applying the search feed failed; retrying")
                    self._close_writer()
                    applied = 0
                if not applied:
                    stop.wait(interval)
        finally:
            with contextlib.suppress(Exception):
                self.release()

    # ---------------------------------------------------------------- documents

    def document(self, doc: SearchDocument) -> tantivy.Document:
        """The Tantivy document of a search document (text fields from the plan)."""
        return tantivy.Document.from_dict(analyse(doc), self.schema)

    def add_analysed(self, writer: tantivy.IndexWriter, fields: dict[str, Any]) -> None:
        """Add a document analysed elsewhere (`analyse`, e.g. in a process pool)."""
        writer.add_document(tantivy.Document.from_dict(fields, self.schema))

    # ---------------------------------------------------------------- plan → Tantivy

    def _term(self, field: str, value: str = "") -> tantivy.Query:
        return tantivy.Query.term_query(self.schema, field, value)

    def _match(self, match: Match) -> tantivy.Query:
        if match.kind == "prefix":
            query = tantivy.Query.phrase_prefix_query(self.schema, match.field,
                                                      list(match.tokens))
        elif match.kind == "phrase" and len(match.tokens) > 1:
            query = tantivy.Query.phrase_query(self.schema, match.field, list(match.tokens))
        else:
            query = tantivy.Query.term_query(self.schema, match.field, match.tokens[0])
        return tantivy.Query.boost_query(query, match.boost)

    def _text(self, text: TextPlan, tie_breaker: float) -> tantivy.Query:
        terms = [tantivy.Query.disjunction_max_query([self._match(m) for m in t.matches],
                                                     tie_breaker) for t in text.terms]
        if text.require_all:
            return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in terms])
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        for query in terms:
            clauses.append((tantivy.Occur.Should,
                            tantivy.Query.const_score_query(query, FALLBACK_PER_TERM)))
            clauses.append((tantivy.Occur.Should, query))
        return tantivy.Query.boolean_query(clauses)

    def _filter(self, node: Filter) -> tantivy.Query:
        if isinstance(node, Terms):
            field = _FILTER_FIELDS[node.field]
            if len(node.values) == 1:
                return self._term(field, node.values[0])
            return tantivy.Query.term_set_query(self.schema, field, list(node.values))
        if isinstance(node, Range):
            return tantivy.Query.range_query(self.schema, node.field,
                                             tantivy.FieldType.Unsigned, node.gte, node.lte)
        occur = tantivy.Occur.Must if isinstance(node, AllOf) else tantivy.Occur.Should
        assert isinstance(node, (AllOf, AnyOf))
        return tantivy.Query.boolean_query([(occur, self._filter(i)) for i in node.items])

    def _query(self, plan: QueryPlan, text: TextPlan | None) -> tantivy.Query:
        filtered = tantivy.Query.const_score_query(self._filter(plan.filter), 0.0)
        if text is None:
            return filtered
        return tantivy.Query.boolean_query([
            (tantivy.Occur.Must, self._text(text, plan.tie_breaker)),
            (tantivy.Occur.Must, filtered)])

    def _run(self, searcher: tantivy.Searcher, plan: QueryPlan, text: TextPlan | None
             ) -> SearchResults:
        query = self._query(plan, text)
        offset = plan.cursor.offset if plan.cursor else 0
        sort = plan.sort
        if sort.key == "score":
            found = searcher.search(query, plan.limit + 1, count=True, offset=offset)
        else:
            found = searcher.search(
                query, plan.limit + 1, count=True, offset=offset,
                order_by_field=f"sort_{sort.key}",
                order=tantivy.Order.Desc if sort.descending else tantivy.Order.Asc)
        hits: list[Hit] = []
        last: tuple[str | float, str] | None = None
        for order_key, address in found.hits[: plan.limit]:
            doc = searcher.doc(address)
            shown = json.loads(doc.get_first("shown"))
            dataset_id = doc.get_first("id")
            score = float(order_key) if sort.key == "score" else 0.0
            hits.append(Hit(dataset_id=dataset_id, slug=shown["slug"], score=score,
                            highlights=highlights_for(shown, plan.highlight_terms)))
            primary = {"score": score, "modified": shown["modified_key"],
                       "title": shown["title_sort"]}[sort.key]
            last = (primary, dataset_id)
        next_cursor = None
        if len(found.hits) > plan.limit and last is not None:
            next_cursor = encode_cursor(sort.name, offset + plan.limit, last)
        facets = self._facets(searcher, query, plan.facets, plan.facet_limit)
        return SearchResults(total=int(found.count or 0), hits=hits, facets=facets,
                             next_cursor=next_cursor)

    def _facets(self, searcher: tantivy.Searcher, query: tantivy.Query,
                names: Iterable[str], limit: int) -> dict[str, list[tuple[str, int]]]:
        names = list(names)
        if not names:
            return {}
        spec = {name: {"terms": {"field": f"f_{name}", "size": limit * 2 + 10}}
                for name in names}
        result = searcher.aggregate(query, spec)
        facets: dict[str, list[tuple[str, int]]] = {}
        for name in names:
            buckets = [(str(b["key"]), int(b["doc_count"]))
                       for b in result.get(name, {}).get("buckets", [])]
            buckets.sort(key=lambda b: (-b[1], b[0]))
            facets[name] = buckets[:limit]
        return facets

    def _related(self, searcher: tantivy.Searcher, plan: QueryPlan,
                 loosened: SearchResults | None) -> list[str]:
        """Topics for a page that found little: the keywords and themes most common among the
        loosened results, else across everything the viewer may see."""
        query = self._query(plan, plan.fallback) if loosened is not None \
            else self._query(plan, None)
        facets = self._facets(searcher, query, ("keyword", "theme"), 8)
        seen: dict[str, int] = {}
        for name in ("keyword", "theme"):
            for value, count in facets.get(name, []):
                seen[value] = max(seen.get(value, 0), count)
        return [v for v, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))][:8]

    def _spelling(self, searcher: tantivy.Searcher, plan: QueryPlan) -> str | None:
        """A spelling suggestion for an English query: each word replaced by the closest word
        of the indexed titles and keywords (edit distance ≤ 2, then most frequent)."""
        if plan.text is None:
            return None
        words: list[str] = []
        changed = False
        for term in plan.text.terms:
            surface = term.surface
            if any("\u3400" <= ch <= "\u9fff" for ch in surface) or len(surface) < 4:
                words.append(surface)
                continue
            best = _closest(searcher, surface)
            if best and best != surface:
                changed = True
                words.append(best)
            else:
                words.append(surface)
        return " ".join(words) if changed else None


def analyse(doc: SearchDocument) -> dict[str, Any]:
    """Every field value of a search document's Tantivy document, as plain data (so the
    analysis — the costly part — can run in other processes)."""
    fields: dict[str, Any] = {
        "id": doc["dataset_id"], "state": doc["state"], "visibility": doc["visibility"],
        "organization_id": doc["organization_id"],
        "modified": modified_stamp(doc.get("modified")),
        "issued": issued_day(doc.get("issued")), "version": int(doc["version"]),
    }
    for name, tokens in index_fields(doc).items():
        if tokens:
            fields[name] = tokens
    for facet, value in facet_values(doc):
        fields.setdefault(f"f_{facet}", []).append(value)
    keys = sort_values(doc)
    fields["sort_modified"] = keys["modified"]
    fields["sort_title"] = keys["title"]
    entries = suggest.entries(doc)
    if entries:
        fields["suggest"] = entries
    vocabulary = suggest.spelling_words(doc)
    if vocabulary:
        fields["vocab"] = vocabulary
    shown = {"slug": doc["slug"], "title_zh": doc.get("title_zh"),
             "title_en": doc.get("title_en"), "description_zh": doc.get("description_zh"),
             "description_en": doc.get("description_en"),
             "modified_key": modified_key(doc.get("modified")) or "",
             "title_sort": title_key(doc)}
    fields["shown"] = json.dumps(shown, ensure_ascii=False).encode()
    return fields


def _with(results: SearchResults, **changes: object) -> SearchResults:
    return replace(results, **changes)  # type: ignore[arg-type]


def _is_write_session(session: Session) -> bool:
    """The registry binds write sessions with the execution option write=True."""
    try:
        return bool(session.get_bind().get_execution_options().get("write", False))
    except Exception:  # an unbound session: treat as a read
        return False


def _closest(searcher: tantivy.Searcher, word: str) -> str | None:
    return closest_word(word, searcher.terms_with_prefix("vocab", word[:2], limit=400))


def closest_word(word: str, candidates: Iterable[tuple[str, int]]) -> str | None:
    """The spelling suggestion for ``word`` among vocabulary words sharing its first two
    letters, with their document counts: edit distance ≤ 2, then the most frequent (every
    engine asks its index for the candidates and decides here)."""
    best: tuple[int, int, str] | None = None
    for key, count in candidates:
        distance = _edit_distance(word, key, 2)
        if distance <= 2 and (best is None or (distance, -count) < (best[0], best[1])):
            best = (distance, -count, key)
    return best[2] if best else None


def _edit_distance(a: str, b: str, bound: int) -> int:
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
