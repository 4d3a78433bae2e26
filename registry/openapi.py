"""The OpenAPI 3.1 document of /api/v1, built from the same JSON Schemas the validators use,
so the published contract and the behaviour cannot drift apart."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from registry.datasets.validation import load_schema
from registry.federation.openapi_paths import federation_paths

PROBLEM = {"$ref": "#/components/responses/Problem"}


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(s): PROBLEM for s in statuses}


def _param(name: str, where: str, schema: dict[str, Any], description: str = "",
           required: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "schema": schema, "required": required}
    if description:
        out["description"] = description
    return out


REF = _param("ref", "path", {"type": "string", "minLength": 1}, "Dataset id or slug", True)
NUMBER = _param("number", "path", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "Version number", True)
BEARER = [{"bearer": []}]


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _rewrite_refs(node: Any, prefix: str) -> Any:
    """Point a schema's internal `#/$defs/x` references at its copy under components."""
    if isinstance(node, dict):
        return {k: (prefix + v[len("#/$defs/"):] if k == "$ref" and isinstance(v, str)
                    and v.startswith("#/$defs/") else _rewrite_refs(v, prefix))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in node]
    return node


def _component_schemas() -> dict[str, Any]:
    dataset = copy.deepcopy(load_schema("dataset.schema.json"))
    defs = dataset.pop("$defs")
    for key in ("$schema", "$id"):
        dataset.pop(key, None)
    schemas: dict[str, Any] = {"DatasetMetadata": _rewrite_refs(dataset,
                                                                "#/components/schemas/")}
    schemas.update({name: _rewrite_refs(value, "#/components/schemas/")
                    for name, value in defs.items()})
    envelope = load_schema("dataset-request.schema.json")["$defs"]
    schemas["Slug"] = envelope["slug"]
    for name, key in (("DatasetCreate", "create"), ("DatasetPatch", "patch")):
        body = copy.deepcopy(envelope[key])
        body["properties"]["slug"] = {"$ref": "#/components/schemas/Slug"}
        body["properties"]["metadata"] = {"$ref": "#/components/schemas/DatasetMetadata"}
        schemas[name] = body
    schemas["DatasetPatch"]["properties"]["metadata"] = {
        "type": "object", "description": "RFC 7396 merge patch of the metadata; the result "
        "must validate as DatasetMetadata"}
    organization = copy.deepcopy(load_schema("organization.schema.json"))
    for key in ("$schema", "$id"):
        organization.pop(key, None)
    schemas["OrganizationCreate"] = organization
    schemas["Organization"] = {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}, "name_zh": {"type": ["string", "null"]},
        "name_en": {"type": ["string", "null"]}, "kind": {"type": "string"},
        "parent": {"type": ["string", "null"]}, "region_code": {"type": ["string", "null"]},
        "description": {"type": ["string", "null"]}, "homepage": {"type": ["string", "null"]},
        "created": {"type": "string"}, "dataset_count": {"type": "integer"},
        "children": {"type": "array", "items": {"type": "string"}},
        "ancestry": {"type": "array", "items": {"type": "string"}}}}
    schemas["LogRecord"] = {"type": ["object", "null"], "properties": {
        "index": {"type": "integer", "minimum": 0}, "leaf_hash": {"type": "string"},
        "entry": {"type": "string", "description": "The exact log entry (RFC 8785 JSON)"},
        "receipt": {"type": ["string", "null"], "description": "Signed note: the registry's "
                    "promise of this leaf before a checkpoint covers it"},
        "metadata_salt": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description":
                          "Only for a v2 (government-only) entry: the hex salt its "
                          "metadata_sha256 commits with, SHA-256(salt || metadata)"}}}
    schemas["DatasetVersion"] = {"type": "object", "required": [
        "id", "slug", "organization", "version", "state", "visibility", "change",
        "metadata_sha256"], "properties": {
        "id": {"type": "string"}, "slug": {"type": "string"},
        "organization": {"type": "string"}, "version": {"type": "integer"},
        "latest_version": {"type": "integer"},
        "state": {"enum": ["draft", "published", "withdrawn"]},
        "visibility": {"enum": ["public", "government"]},
        "change": {"enum": ["dataset.drafted", "dataset.published", "dataset.updated",
                            "dataset.withdrawn", "dataset.discarded"]},
        "created": {"type": "string"}, "note": {"type": ["string", "null"]},
        "metadata": {"$ref": "#/components/schemas/DatasetMetadata"},
        "metadata_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "log": {"$ref": "#/components/schemas/LogRecord"}}}
    schemas["SearchPage"] = {"type": "object", "required": ["total", "items", "facets"],
                             "properties": {
        "total": {"type": "integer"}, "next_cursor": {"type": ["string", "null"]},
        "items": {"type": "array", "items": {"type": "object"}},
        "loosened_query": {"type": "string", "description":
                           "Nothing matched every word: these hits match some of these finer "
                           "words, most matching words first"},
        "suggestion": {"type": "string", "description": "A query to try instead"},
        "related": {"type": "array", "items": {"type": "string"},
                    "description": "Related topics (keywords and themes)"},
        "truncated": {"type": "boolean", "description":
                      "q was cut to 200 characters / 16 terms"},
        "facets": {"type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "object", "properties": {"value": {"type": "string"},
                                             "count": {"type": "integer"}}}}}}}
    schemas["ProofBundle"] = {"type": "object", "required": [
        "format", "origin", "entry", "index", "leaf_hash", "tree_size", "inclusion_path",
        "checkpoint"], "properties": {
        "format": {"const": "ndr-proof-bundle/v1"}, "origin": {"type": "string"},
        "dataset": {"type": "string"}, "version": {"type": "integer"},
        "entry": {"type": "string"}, "metadata": {"type": ["object", "null"]},
        "metadata_sha256": {"type": "string"}, "index": {"type": "integer"},
        "leaf_hash": {"type": "string"}, "tree_size": {"type": "integer"},
        "inclusion_path": {"type": "array", "items": {"type": "string"}},
        "checkpoint": {"type": "string"}, "receipt": {"type": ["string", "null"]},
        "anchors": {"type": "array", "items": {"type": "object"}},
        "metadata_salt": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}
    schemas["Token"] = {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "organization": {"type": ["string", "null"]}, "role": {"type": "string"},
        "created": {"type": "string"}, "expires": {"type": ["string", "null"]},
        "revoked": {"type": ["string", "null"]},
        "token": {"type": "string", "description": "Only in the creation response"}}}
    schemas["Problem"] = {"type": "object", "required": ["type", "title", "status"],
                          "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["detail"],
                                              "properties": {
            "detail": {"type": "string"}, "pointer": {"type": "string"},
            "name": {"type": "string"}}}}}}
    return schemas


def _search_parameters() -> list[dict[str, Any]]:
    from search import FACET_FIELDS

    date = {"type": "string", "format": "date"}
    params = [
        _param("q", "query", {"type": "string", "maxLength": 500}, "Full text, zh and/or en"),
        _param("sort", "query", {"enum": ["relevance", "modified", "-modified", "title"]}),
        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100}),
        _param("cursor", "query", {"type": "string"}, "next_cursor of the previous page"),
        _param("facet", "query", {"type": "array", "items": {"enum": list(FACET_FIELDS)}},
               "Facets to count"),
        _param("facet_limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}),
        _param("include_withdrawn", "query", {"type": "boolean"}),
    ]
    params += [_param(name, "query", {"type": "array", "items": {"type": "string"}},
                      f"Filter on {name}") for name in FACET_FIELDS]
    params += [_param(name, "query", date) for name in
               ("issued_from", "issued_to", "modified_from", "modified_to")]
    return params


@cache
def openapi_document() -> dict[str, Any]:
    version_response = _json({"$ref": "#/components/schemas/DatasetVersion"})
    etag = {"ETag": {"schema": {"type": "string"}, "description": 'The version, as "vN"'}}
    version_response["headers"] = etag
    paths: dict[str, Any] = {
        "/api/v1/datasets": {
            "get": {"summary": "Search datasets", "operationId": "searchDatasets",
                    "parameters": _search_parameters(),
                    "responses": {"200": _json({"$ref": "#/components/schemas/SearchPage"}),
                                  **_problems(400, 401)}},
            "post": {"summary": "Publish a dataset (or save a draft)",
                     "operationId": "createDataset", "security": BEARER,
                     "parameters": [_param("Idempotency-Key", "header",
                                           {"type": "string", "minLength": 1,
                                            "maxLength": 200})],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/DatasetCreate"}}}},
                     "responses": {"201": {**version_response, "description": "Recorded"},
                                   **_problems(400, 401, 403, 404, 409, 413, 415, 422)}}},
        "/api/v1/suggest": {
            "get": {"summary": "Autocomplete: titles, keywords, departments and topics",
                    "description": "As the user types (Chinese, pinyin initials such as jtys "
                                   "for 交通运输, or English); counts only entries the caller "
                                   "may see. q is cut to 100 characters.",
                    "operationId": "suggest",
                    "parameters": [
                        _param("q", "query", {"type": "string", "minLength": 1},
                               "What was typed so far", True),
                        _param("limit", "query", {"type": "integer", "minimum": 1,
                                                  "maximum": 20})],
                    "responses": {"200": _json({"type": "object", "required": [
                        "q", "suggestions"], "properties": {
                        "q": {"type": "string"},
                        "suggestions": {"type": "array", "items": {
                            "type": "object", "properties": {
                                "text": {"type": "string"},
                                "kind": {"enum": ["title", "keyword", "department", "topic"]},
                                "count": {"type": "integer"}}}}}}),
                        **_problems(400, 401)}}},
        "/api/v1/datasets/{ref}": {
            "parameters": [REF],
            "get": {"summary": "The current version (410: a mirrored dataset its publisher "
                               "restricted)", "operationId": "getDataset",
                    "responses": {"200": version_response, **_problems(401, 404, 410)}},
            "patch": {"summary": "Record a new version (RFC 7396 merge patch)",
                      "operationId": "patchDataset", "security": BEARER,
                      "parameters": [_param("If-Match", "header", {"type": "string"})],
                      "requestBody": {"required": True, "content": {
                          "application/json": {"schema": {
                              "$ref": "#/components/schemas/DatasetPatch"}},
                          "application/merge-patch+json": {"schema": {
                              "$ref": "#/components/schemas/DatasetPatch"}}}},
                      "responses": {"200": version_response,
                                    **_problems(400, 401, 403, 404, 409, 412, 413, 415, 422)}},
            "delete": {"summary": "Withdraw (a new version; history stays)",
                       "operationId": "withdrawDataset", "security": BEARER,
                       "parameters": [_param("If-Match", "header", {"type": "string"}),
                                      _param("reason", "query", {"type": "string"})],
                       "responses": {"200": version_response,
                                     **_problems(400, 401, 403, 404, 409, 412, 415)}}},
        "/api/v1/datasets/{ref}/versions": {
            "parameters": [REF],
            "get": {"summary": "Version history", "operationId": "listVersions",
                    "parameters": [
                        _param("limit", "query", {"type": "integer", "minimum": 1,
                                                  "maximum": 1000}),
                        _param("after", "query", {"type": "integer", "minimum": 0,
                                                  "maximum": 2**63 - 1})],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "items": {"type": "array"}, "next": {"type": ["string", "null"]}}}),
                        **_problems(400, 401, 404, 410)}}},
        "/api/v1/datasets/{ref}/versions/{number}": {
            "parameters": [REF, NUMBER],
            "get": {"summary": "One version", "operationId": "getVersion",
                    "responses": {"200": version_response, **_problems(401, 404, 410)}}},
        "/api/v1/datasets/{ref}/versions/{number}/proof": {
            "parameters": [REF, NUMBER],
            "get": {"summary": "Proof bundle (or C2SP tlog-proof text); on a hub, a federated "
                               "version's is its ndr-federated-proof/v1 chain (JSON only)",
                    "operationId": "getProof",
                    "parameters": [_param("format", "query", {"enum": ["json", "tlog-proof"]})],
                    "responses": {"200": {"description": "The proof", "content": {
                        "application/json": {"schema": {"anyOf": [
                            {"$ref": "#/components/schemas/ProofBundle"},
                            {"type": "object", "required": ["format", "member", "hub"],
                             "properties": {"format": {"const": "ndr-federated-proof/v1"}}}]}},
                        "text/plain": {"schema": {"type": "string"}}}},
                        **_problems(400, 401, 404, 410, 503)}}},
        "/api/v1/datasets/{ref}/dcat": {
            "parameters": [REF],
            "get": {"summary": "DCAT-AP 3 RDF of the current version", "operationId":
                    "getDatasetDcat",
                    "parameters": [_param("format", "query", {"enum": ["jsonld", "ttl"]})],
                    "responses": {"200": {"description": "RDF", "content": {
                        "application/ld+json": {"schema": {"type": "object"}},
                        "text/turtle": {"schema": {"type": "string"}}}},
                        **_problems(400, 401, 404)}}},
        "/api/v1/catalog": {
            "get": {"summary": "DCAT-AP 3 catalogue of public datasets, in pages (Link: next)",
                    "operationId": "getCatalog",
                    "parameters": [
                        _param("format", "query", {"enum": ["jsonld", "ttl"]}),
                        _param("limit", "query", {"type": "integer", "minimum": 1,
                                                  "maximum": 1000}),
                        _param("after", "query", {"type": "string"})],
                    "responses": {"200": {"description": "RDF", "content": {
                        "application/ld+json": {"schema": {"type": "object"}},
                        "text/turtle": {"schema": {"type": "string"}}}},
                        **_problems(400)}}},
        "/api/v1/organizations": {
            "get": {"summary": "Organisations", "operationId": "listOrganizations",
                    "responses": {"200": _json({"type": "object", "properties": {
                        "items": {"type": "array", "items": {
                            "$ref": "#/components/schemas/Organization"}},
                        "total": {"type": "integer"}}})}},
            "post": {"summary": "Create an organisation (operator, or admin of the parent)",
                     "operationId": "createOrganization", "security": BEARER,
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/OrganizationCreate"}}}},
                     "responses": {"201": _json({"$ref": "#/components/schemas/Organization"}),
                                   **_problems(400, 401, 403, 409, 413, 415, 422)}}},
        "/api/v1/organizations/{organization_id}": {
            "parameters": [_param("organization_id", "path", {"type": "string"}, "", True)],
            "get": {"summary": "One organisation", "operationId": "getOrganization",
                    "responses": {"200": _json({"$ref": "#/components/schemas/Organization"}),
                                  **_problems(404)}}},
        "/api/v1/tokens": {
            "get": {"summary": "Tokens of an organisation (admins)", "operationId":
                    "listTokens", "security": BEARER,
                    "parameters": [_param("organization", "query", {"type": "string"})],
                    "responses": {"200": _json({"type": "object"}),
                                  **_problems(400, 401, 403)}},
            "post": {"summary": "Mint a token (the secret is in this response only)",
                     "operationId": "createToken", "security": BEARER,
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"type": "object", "required": ["name", "role"],
                                    "additionalProperties": False, "properties": {
                                        "name": {"type": "string"},
                                        "organization": {"type": "string"},
                                        "role": {"enum": ["member", "editor", "admin",
                                                          "operator"]},
                                        "expires_in_days": {"type": "integer", "minimum": 1,
                                                            "maximum": 365}}}}}},
                     "responses": {"201": _json({"$ref": "#/components/schemas/Token"}),
                                   **_problems(400, 401, 403, 404, 413, 415, 422)}}},
        "/api/v1/tokens/{token_id}": {
            "parameters": [_param("token_id", "path", {"type": "string"}, "", True)],
            "delete": {"summary": "Revoke a token", "operationId": "revokeToken",
                       "security": BEARER,
                       "responses": {"200": _json({"$ref": "#/components/schemas/Token"}),
                                     **_problems(401, 403, 404)}}},
        "/api/v1/log/proof/inclusion": {
            "get": {"summary": "RFC 9162 inclusion proof", "operationId": "inclusionProof",
                    "parameters": [
                        _param("index", "query", {"type": "integer", "minimum": 0}, "", True),
                        _param("size", "query", {"type": "integer", "minimum": 1})],
                    "responses": {"200": _json({"type": "object"}), **_problems(400, 404)}}},
        "/api/v1/log/proof/consistency": {
            "get": {"summary": "RFC 9162 consistency proof", "operationId": "consistencyProof",
                    "parameters": [
                        _param("old", "query", {"type": "integer", "minimum": 1}, "", True),
                        _param("new", "query", {"type": "integer", "minimum": 1})],
                    "responses": {"200": _json({"type": "object"}), **_problems(400, 404)}}},
        "/api/v1/anchors": {
            "get": {"summary": "Anchors of checkpoints with their chain receipts",
                    "operationId": "listAnchors",
                    "parameters": [_param("limit", "query", {"type": "integer", "minimum": 1,
                                                             "maximum": 1000}),
                                   _param("before", "query", {"type": "integer",
                                                              "minimum": 1,
                                                              "maximum": 2**31 - 1}),
                                   _param("status", "query",
                                          {"enum": ["pending", "final", "failed"]})],
                    "responses": {"200": _json({"type": "object"}), **_problems(400)}}},
    }
    paths.update(federation_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "National data registry API", "version": "1.0.0",
                 "description": "Publish, search and verify dataset entries. Every change is a "
                 "leaf of an RFC 9162 Merkle log; see /log/ for C2SP checkpoints and tiles."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": _component_schemas(),
            "responses": {"Problem": {"description": "RFC 9457 problem details", "content": {
                "application/problem+json": {"schema": {
                    "$ref": "#/components/schemas/Problem"}}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An API token (ndr_…)"}},
        },
    }
