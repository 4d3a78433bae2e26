"""Two client flavours behind one interface: OpenSearch (``opensearch-py``) and Elasticsearch 8/9
(``elasticsearch``).

Why two: since 7.14 the official Elasticsearch client refuses to talk to a server that is not
Elastic's (``UnsupportedProductError``), and OpenSearch's client is not promised to keep up with
Elasticsearch 8/9. The search-cluster backend only needs a dozen calls; this module makes each
of them once per flavour (OpenSearch takes request bodies as ``body=``, Elasticsearch 8/9 as
keyword arguments), and turns the engine's errors into one readable line (:func:`engine_message`)
so an operator sees what the engine said, not a Python traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

FLAVOURS = ("opensearch", "elasticsearch")

# Engine JSON goes in and out of these clients; it is the engine's schema, not ours.
Json = dict[str, Any]


class ClusterClient(Protocol):
    """What the backend asks of a search cluster."""

    flavour: str

    def info(self) -> Json: ...
    def health(self, *, timeout: float = 5.0) -> Json: ...
    def put_template(self, name: str, body: Json) -> None: ...
    def delete_template(self, name: str) -> None: ...
    def alias_indices(self, alias: str) -> list[str]: ...
    def create_index(self, name: str, *, settings: Json | None = None,
                     aliases: Json | None = None) -> None: ...
    def put_settings(self, index: str, settings: Json) -> None: ...
    def refresh(self, index: str) -> None: ...
    def update_aliases(self, actions: list[Json]) -> None: ...
    def delete_index(self, index: str) -> None: ...
    def index_exists(self, index: str) -> bool: ...
    def count(self, index: str) -> int: ...
    def search(self, index: str, body: Json) -> Json: ...
    def streaming_bulk(self, actions: Iterable[Json], *, require_alias: bool = False,
                       max_retries: int = 0, initial_backoff: float = 2.0,
                       ) -> Iterator[tuple[bool, Json]]: ...
    def bulk(self, actions: Iterable[Json]) -> tuple[int, list[Json]]: ...
    def scan(self, index: str, query: Json, source: list[str]) -> Iterator[Json]: ...
    def close(self) -> None: ...


def _hosts(url: str | Iterable[str]) -> list[str]:
    """A comma-separated URL list (one per node) or a sequence of URLs."""
    items = url.split(",") if isinstance(url, str) else list(url)
    hosts = [u.strip() for u in items if u.strip()]
    if not hosts:
        raise ValueError("no search cluster URL given")
    for host in hosts:
        if not host.startswith(("http://", "https://")):
            raise ValueError(f"search cluster URL must be http:// or https://: {host!r}")
    return hosts


class OpenSearchClient:
    """The ``opensearch-py`` flavour."""

    flavour = "opensearch"

    def __init__(self, url: str | Iterable[str], *, timeout: float = 30.0) -> None:
        from opensearchpy import OpenSearch, helpers

        self.raw = OpenSearch(_hosts(url), timeout=timeout, max_retries=2,
                              retry_on_timeout=True, pool_maxsize=16)
        self._helpers = helpers

    def info(self) -> Json:
        return dict(self.raw.info())

    def health(self, *, timeout: float = 5.0) -> Json:
        return dict(self.raw.cluster.health(params={"request_timeout": timeout}))

    def put_template(self, name: str, body: Json) -> None:
        self.raw.indices.put_index_template(name=name, body=body)

    def delete_template(self, name: str) -> None:
        self.raw.indices.delete_index_template(name=name)

    def alias_indices(self, alias: str) -> list[str]:
        if not self.raw.indices.exists_alias(name=alias):
            return []
        return sorted(self.raw.indices.get_alias(name=alias))

    def create_index(self, name: str, *, settings: Json | None = None,
                     aliases: Json | None = None) -> None:
        body: Json = {}
        if settings:
            body["settings"] = settings
        if aliases:
            body["aliases"] = aliases
        self.raw.indices.create(index=name, body=body)

    def put_settings(self, index: str, settings: Json) -> None:
        self.raw.indices.put_settings(index=index, body=settings)

    def refresh(self, index: str) -> None:
        self.raw.indices.refresh(index=index)

    def update_aliases(self, actions: list[Json]) -> None:
        self.raw.indices.update_aliases(body={"actions": actions})

    def delete_index(self, index: str) -> None:
        self.raw.indices.delete(index=index)

    def index_exists(self, index: str) -> bool:
        return bool(self.raw.indices.exists(index=index))

    def count(self, index: str) -> int:
        return int(self.raw.count(index=index)["count"])

    def search(self, index: str, body: Json) -> Json:
        return dict(self.raw.search(index=index, body=body))

    def streaming_bulk(self, actions: Iterable[Json], *, require_alias: bool = False,
                       max_retries: int = 0, initial_backoff: float = 2.0,
                       ) -> Iterator[tuple[bool, Json]]:
        params = {"require_alias": "true"} if require_alias else {}
        yield from self._helpers.streaming_bulk(
            self.raw, actions, raise_on_error=False, raise_on_exception=False,
            max_retries=max_retries, initial_backoff=initial_backoff, yield_ok=True,
            params=params)

    def bulk(self, actions: Iterable[Json]) -> tuple[int, list[Json]]:
        ok, errors = self._helpers.bulk(self.raw, actions, chunk_size=500,
                                        raise_on_error=False)
        return int(ok), list(errors) if isinstance(errors, list) else []

    def scan(self, index: str, query: Json, source: list[str]) -> Iterator[Json]:
        yield from self._helpers.scan(self.raw, index=index, query=query, _source=source,
                                      size=1000)

    def close(self) -> None:
        self.raw.close()


class ElasticsearchClient:
    """The ``elasticsearch`` (8/9) flavour. It refuses servers that are not Elasticsearch."""

    flavour = "elasticsearch"

    def __init__(self, url: str | Iterable[str], *, timeout: float = 30.0) -> None:
        from elasticsearch import Elasticsearch, helpers

        self.raw = Elasticsearch(_hosts(url), request_timeout=timeout, max_retries=2,
                                 retry_on_timeout=True)
        self._helpers = helpers

    def info(self) -> Json:
        return dict(self.raw.info())

    def health(self, *, timeout: float = 5.0) -> Json:
        return dict(self.raw.options(request_timeout=timeout).cluster.health())

    def put_template(self, name: str, body: Json) -> None:
        self.raw.indices.put_index_template(name=name, **body)

    def delete_template(self, name: str) -> None:
        self.raw.indices.delete_index_template(name=name)

    def alias_indices(self, alias: str) -> list[str]:
        if not self.raw.indices.exists_alias(name=alias):
            return []
        return sorted(self.raw.indices.get_alias(name=alias))

    def create_index(self, name: str, *, settings: Json | None = None,
                     aliases: Json | None = None) -> None:
        self.raw.indices.create(index=name, settings=settings, aliases=aliases)

    def put_settings(self, index: str, settings: Json) -> None:
        self.raw.indices.put_settings(index=index, settings=settings)

    def refresh(self, index: str) -> None:
        self.raw.indices.refresh(index=index)

    def update_aliases(self, actions: list[Json]) -> None:
        self.raw.indices.update_aliases(actions=actions)

    def delete_index(self, index: str) -> None:
        self.raw.indices.delete(index=index)

    def index_exists(self, index: str) -> bool:
        return bool(self.raw.indices.exists(index=index))

    def count(self, index: str) -> int:
        return int(self.raw.count(index=index)["count"])

    def search(self, index: str, body: Json) -> Json:
        return dict(self.raw.search(index=index, **body))

    def streaming_bulk(self, actions: Iterable[Json], *, require_alias: bool = False,
                       max_retries: int = 0, initial_backoff: float = 2.0,
                       ) -> Iterator[tuple[bool, Json]]:
        extra: Json = {"require_alias": True} if require_alias else {}
        yield from self._helpers.streaming_bulk(
            self.raw, actions, raise_on_error=False, raise_on_exception=False,
            max_retries=max_retries, initial_backoff=initial_backoff, yield_ok=True, **extra)

    def bulk(self, actions: Iterable[Json]) -> tuple[int, list[Json]]:
        ok, errors = self._helpers.bulk(self.raw, actions, chunk_size=500,
                                        raise_on_error=False)
        return int(ok), list(errors) if isinstance(errors, list) else []

    def scan(self, index: str, query: Json, source: list[str]) -> Iterator[Json]:
        yield from self._helpers.scan(self.raw, index=index, query=query, _source=source,
                                      size=1000)

    def close(self) -> None:
        self.raw.close()


def connect(flavour: str, url: str | Iterable[str], *, timeout: float = 30.0
            ) -> ClusterClient:
    """The client of ``flavour`` ("opensearch" or "elasticsearch") for the node URL(s)."""
    if flavour == "opensearch":
        return OpenSearchClient(url, timeout=timeout)
    if flavour == "elasticsearch":
        return ElasticsearchClient(url, timeout=timeout)
    raise ValueError(f"unknown search cluster flavour {flavour!r}; one of {FLAVOURS}")


def _reason(error: object) -> str:
    """``type: reason`` of an engine error object (root cause first, as operators need)."""
    if isinstance(error, Mapping):
        causes = error.get("root_cause")
        if isinstance(causes, list) and causes and isinstance(causes[0], Mapping):
            error = causes[0] if causes[0].get("reason") else error
        kind = error.get("type")  # type: ignore[union-attr]
        reason = error.get("reason")  # type: ignore[union-attr]
        if kind or reason:
            return f"{kind}: {reason}" if kind else str(reason)
    return str(error)


def item_message(item: Mapping[str, Any]) -> str:
    """The engine's message for one failed bulk item (``{"index": {"status":…, "error":…}}``)."""
    result = next(iter(item.values()), {}) if item else {}
    if not isinstance(result, Mapping):
        return str(item)
    status = result.get("status")
    error = result.get("error") or result.get("exception") or result.get("result")
    return f"HTTP {status} {_reason(error)}" if isinstance(status, int) else _reason(error)


def engine_message(exc: BaseException) -> str:
    """One line saying what the engine (or the network on the way to it) said."""
    status = getattr(exc, "status_code", None)  # opensearch-py TransportError
    meta_status = getattr(getattr(exc, "meta", None), "status", None)  # elasticsearch ApiError
    if isinstance(meta_status, int):
        status = meta_status
    body = getattr(exc, "body", None)
    if not isinstance(body, Mapping):
        body = getattr(exc, "info", None)
    if isinstance(body, Mapping) and "error" in body:
        text = _reason(body["error"])
        return f"HTTP {status} {text}" if isinstance(status, int) else text
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return f"{type(exc).__name__}: {message}"
    return f"{type(exc).__name__}: {exc}"
