"""CKAN-compatible read API (`/api/3/action/...`), so existing CKAN clients and harvesters
(ckanapi, ckanext-harvest, DCAT harvesters) read this registry unchanged.

Responses follow CKAN's envelope `{"help", "success", "result"}` and its package dictionary;
errors follow CKAN's `{"success": false, "error": {"__type", "message"}}`. Search goes through the
same search backend as `/api/v1/datasets`, with CKAN's `fq` clauses mapped onto our filters.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from registry.datasets import actions, policy
from registry.datasets.field_rules import safe_link
from registry.datasets.listing import indexed_versions, query_from_args, run_search
from registry.datasets.models import Dataset, DatasetVersion, State, Visibility
from registry.http import bounded_int, current_principal, parse_json_text, registry_state
from registry.organizations.actions import organization_list
from registry.organizations.models import Organization
from registry.problems import Problem
from registry.timefmt import rfc3339

ckan_blueprint = Blueprint("ckan", __name__, url_prefix="/api/3/action")

CKAN_COMPATIBLE_VERSION = "2.10.4"
MAX_ROWS = 1000
# CKAN / Solr field names → our filter names.
FQ_FIELDS = {"organization": "publisher", "owner_org": "publisher", "tags": "keyword",
             "res_format": "format", "license_id": "license", "groups": "theme",
             "theme": "theme", "keyword": "keyword", "publisher": "publisher",
             "format": "format", "license": "license", "sharing_type": "sharing_type",
             "open_attribute": "open_attribute", "update_cycle": "update_cycle",
             "data_grade": "data_grade", "region": "region"}
SORTS = {"score desc": "relevance", "metadata_modified desc": "-modified",
         "metadata_modified asc": "modified", "title_string asc": "title",
         "name asc": "title", "relevance": "relevance"}
_FQ_CLAUSE = re.compile(r'(\+|-)?([A-Za-z_]+):("(?:[^"\\]|\\.)*"|\S+)')


class CkanError(Exception):
    def __init__(self, status: int, kind: str, message: str | dict[str, Any]) -> None:
        super().__init__(str(message))
        self.status, self.kind, self.message = status, kind, message


def _envelope(action: str, result: Any) -> Response:
    body = {"help": url_for(f"{request.blueprint}.help_show", name=action, _external=True),
            "success": True, "result": result}
    return Response(json.dumps(body, ensure_ascii=False, default=str),
                    mimetype="application/json")


@ckan_blueprint.errorhandler(CkanError)
def _ckan_error(error: CkanError) -> Response:
    body = {"help": request.url, "success": False,
            "error": {"__type": error.kind, "message": error.message}}
    return Response(json.dumps(body, ensure_ascii=False), status=error.status,
                    mimetype="application/json")


@ckan_blueprint.errorhandler(Problem)
def _problem_as_ckan(problem: Problem) -> Response:
    kinds = {400: "Validation Error", 401: "Authorization Error", 403: "Authorization Error",
             404: "Not Found Error"}
    message: str | dict[str, Any] = problem.detail or problem.title
    if problem.errors:
        message = {(e.name or e.pointer or "_"): [e.detail] for e in problem.errors}
    return _ckan_error(CkanError(409 if problem.status in (400, 422) else problem.status,
                                 kinds.get(problem.status, "Error"), message))


def _params() -> MultiDict[str, str]:
    """CKAN accepts parameters in the query string or as a JSON body (POST)."""
    params: MultiDict[str, str] = MultiDict(request.args)
    if request.method == "POST" and request.get_data(cache=True):
        try:
            body = parse_json_text(request.get_data(cache=True))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CkanError(400, "Validation Error", f"the body is not acceptable JSON: {exc}"
                            ) from None
        if not isinstance(body, dict):
            raise CkanError(400, "Validation Error", "the body must be a JSON object")
        for key, value in body.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                params.add(key, v if isinstance(v, str) else json.dumps(v))
    return params


def _int(params: MultiDict[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        value = bounded_int(params.get(name), default, low, high)
    except ValueError as exc:
        raise CkanError(409, "Validation Error", {name: [str(exc)]}) from None
    assert value is not None
    return value


def parse_fq(fq: str) -> dict[str, list[str]]:
    """CKAN's `fq` (Solr filter query) as our filters: `organization:mot tags:"交通"`."""
    filters: dict[str, list[str]] = {}
    for sign, field, raw in _FQ_CLAUSE.findall(fq or ""):
        if sign == "-":
            raise CkanError(409, "Validation Error", {"fq": ["negative clauses are not "
                                                             "supported"]})
        name = FQ_FIELDS.get(field)
        if name is None:
            raise CkanError(409, "Validation Error", {"fq": [f"unknown field {field!r}"]})
        value = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
        filters.setdefault(name, []).append(value)
    return filters


def _facet_fields(params: MultiDict[str, str]) -> list[str]:
    raw = params.get("facet.field")
    if not raw:
        return []
    try:
        names = parse_json_text(raw)
    except ValueError:
        names = [raw]
    if not isinstance(names, list):
        raise CkanError(409, "Validation Error", {"facet.field": ["must be a JSON list"]})
    return [str(n) for n in names]


def _ours_to_ckan_facet(name: str) -> str:
    reverse = {"publisher": "organization", "keyword": "tags", "format": "res_format",
               "license": "license_id", "theme": "groups"}
    return reverse.get(name, name)


def package_dict(dataset: Dataset, version: DatasetVersion,
                 organization: Organization | None) -> dict[str, Any]:
    metadata = actions.version_metadata(version)
    title = metadata.get("title", {})
    description = metadata.get("description", {})
    resources = []
    for n, dist in enumerate(metadata.get("distributions", [])):
        resources.append({
            "id": f"{dataset.id}-{n}", "package_id": dataset.id, "position": n,
            "name": dist.get("title") or dist.get("format") or f"resource {n + 1}",
            "description": dist.get("description", ""),
            # only web addresses leave as links (entries logged before the rule included)
            "url": safe_link(dist.get("download_url")) or safe_link(dist.get("access_url"))
            or "",
            "format": dist.get("format", ""), "mimetype": dist.get("media_type"),
            "size": dist.get("byte_size"),
            "hash": ("sha256:" + dist["checksum"]["value"]) if dist.get("checksum") else "",
        })
    extras = [{"key": key, "value": value if isinstance(value, str) else json.dumps(
        value, ensure_ascii=False)} for key, value in (
        ("title_zh", title.get("zh")), ("title_en", title.get("en")),
        ("resource_code", metadata.get("resource_code")),
        ("sharing_type", (metadata.get("sharing") or {}).get("type")),
        ("open_attribute", metadata.get("open_attribute")),
        ("update_cycle", metadata.get("update_cycle")),
        ("data_grade", metadata.get("data_grade")),
        ("spatial", (metadata.get("spatial") or {}).get("name")),
        ("metadata_sha256", version.metadata_sha256),
        ("log_index", version.leaf_index)) if value is not None]
    org = None if organization is None else {
        "id": organization.id, "name": organization.id, "title": organization.display_name,
        "type": "organization", "is_organization": True, "state": "active",
        "description": organization.description or ""}
    return {
        "id": dataset.id, "name": version.slug, "type": "dataset",
        "title": title.get("zh") or title.get("en") or version.slug,
        "notes": description.get("zh") or description.get("en") or "",
        "url": safe_link(metadata.get("landing_page")) or "", "version": str(version.version),
        "state": "deleted" if version.state == State.WITHDRAWN else "active",
        "private": version.visibility == Visibility.GOVERNMENT,
        "metadata_created": rfc3339(dataset.created_at),
        "metadata_modified": rfc3339(version.created_at),
        "owner_org": dataset.organization_id, "organization": org,
        "license_id": metadata.get("license", ""), "license_title": metadata.get("license", ""),
        "tags": [{"name": k, "display_name": k} for k in metadata.get("keywords", [])],
        "groups": [{"name": t, "title": t} for t in metadata.get("themes", [])],
        "resources": resources, "num_resources": len(resources),
        "num_tags": len(metadata.get("keywords", [])), "extras": extras,
    }


def _packages(session: Any, ids: list[str]) -> list[dict[str, Any]]:
    pairs = indexed_versions(session, ids)
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({d.organization_id for d, _ in pairs})))}
    return [package_dict(dataset, version, orgs.get(dataset.organization_id))
            for dataset, version in pairs]


@ckan_blueprint.route("/package_search", methods=["GET", "POST"])
def package_search() -> Response:
    params = _params()
    rows = _int(params, "rows", 10, 0, MAX_ROWS)
    start = _int(params, "start", 0, 0, 100_000)
    sort = SORTS.get((params.get("sort") or "score desc").strip().lower())
    if sort is None:
        raise CkanError(409, "Validation Error", {"sort": ["supported: " + ", ".join(SORTS)]})
    facet_names = _facet_fields(params)
    ours = [FQ_FIELDS.get(name) for name in facet_names]
    if None in ours:
        raise CkanError(409, "Validation Error", {"facet.field": ["unknown facet field"]})
    args: MultiDict[str, str] = MultiDict()
    q = params.get("q", "")
    if q and q not in ("*:*", "*"):
        args["q"] = q
    for name, values in parse_fq(params.get("fq", "")).items():
        for value in values:
            args.add(name, value)
    if not q or q in ("*:*", "*"):
        sort = "-modified" if sort == "relevance" else sort
    args["sort"] = sort
    for name in ours:
        args.add("facet", name)  # type: ignore[arg-type]
    args["facet_limit"] = str(_int(params, "facet.limit", 50, 1, 500))
    principal = current_principal()
    state = registry_state()
    with state.db.read() as session:
        ids, total, facets, cursor = [], 0, {}, None
        wanted = start + rows
        while True:
            page_args = MultiDict(args)
            page_args["limit"] = str(max(1, min(100, wanted - len(ids))))
            if cursor:
                page_args["cursor"] = cursor
            results = run_search(session, state.search, query_from_args(page_args, principal))
            total, facets = results.total, facets or results.facets
            ids.extend(hit.dataset_id for hit in results.hits)
            cursor = results.next_cursor
            if len(ids) >= wanted or not cursor or not results.hits:
                break
        packages = _packages(session, ids[start:start + rows]) if rows else []
    search_facets = {}
    for ckan_name, our_name in zip(facet_names, ours, strict=True):
        items = [{"name": v, "display_name": v, "count": c}
                 for v, c in facets.get(our_name, [])]  # type: ignore[arg-type]
        search_facets[ckan_name] = {"title": ckan_name, "items": items}
    return _envelope("package_search", {
        "count": total, "sort": params.get("sort", "score desc"), "results": packages,
        "facets": {k: {i["name"]: i["count"] for i in v["items"]}
                   for k, v in search_facets.items()},
        "search_facets": search_facets})


@ckan_blueprint.route("/package_show", methods=["GET", "POST"])
def package_show() -> Response:
    params = _params()
    ref = params.get("id") or params.get("name")
    if not ref:
        raise CkanError(409, "Validation Error", {"id": ["Missing value"]})
    principal = current_principal()
    with registry_state().db.read() as session:
        dataset, version = actions.dataset_show(session, principal, ref)
        org = session.get(Organization, dataset.organization_id)
        return _envelope("package_show", package_dict(dataset, version, org))


@ckan_blueprint.route("/package_list", methods=["GET", "POST"])
def package_list() -> Response:
    params = _params()
    limit = _int(params, "limit", MAX_ROWS, 1, MAX_ROWS)
    offset = _int(params, "offset", 0, 0, 10_000_000)
    query = policy.released_versions(current_principal()).with_only_columns(
        DatasetVersion.slug)
    with registry_state().db.read() as session:
        names = list(session.scalars(
            query.order_by(DatasetVersion.slug).offset(offset).limit(limit)))
    return _envelope("package_list", names)


def _organization_dict(org: Organization, count: int) -> dict[str, Any]:
    return {"id": org.id, "name": org.id, "title": org.display_name,
            "display_name": org.display_name, "type": "organization",
            "is_organization": True, "state": "active", "package_count": count,
            "description": org.description or "", "created": rfc3339(org.created_at),
            "groups": [{"name": org.parent_id}] if org.parent_id else [],
            "extras": [{"key": k, "value": v} for k, v in (
                ("name_zh", org.name_zh), ("name_en", org.name_en), ("kind", org.kind),
                ("region_code", org.region_code)) if v]}


@ckan_blueprint.route("/organization_list", methods=["GET", "POST"])
def organization_list_action() -> Response:
    params = _params()
    all_fields = params.get("all_fields", "false").lower() in ("true", "1")
    principal = current_principal()
    with registry_state().db.read() as session:
        counts = policy.organization_counts(session, principal)
        orgs = organization_list(session)
        result: list[Any] = ([_organization_dict(o, counts.get(o.id, 0)) for o in orgs]
                             if all_fields else [o.id for o in orgs])
    return _envelope("organization_list", result)


@ckan_blueprint.route("/organization_show", methods=["GET", "POST"])
def organization_show_action() -> Response:
    params = _params()
    org_id = params.get("id")
    if not org_id:
        raise CkanError(409, "Validation Error", {"id": ["Missing value"]})
    principal = current_principal()
    with registry_state().db.read() as session:
        org = session.get(Organization, org_id)
        if org is None:
            raise CkanError(404, "Not Found Error", "Not found")
        count = policy.organization_counts(session, principal).get(org.id, 0)
        return _envelope("organization_show", _organization_dict(org, count))


@ckan_blueprint.route("/status_show", methods=["GET", "POST"])
def status_show() -> Response:
    state = registry_state()
    return _envelope("status_show", {
        "site_title": "National data registry", "site_url": state.settings.public_url,
        "site_description": "CKAN-compatible read API of the national data registry",
        "ckan_version": CKAN_COMPATIBLE_VERSION, "error_emails_to": None,
        "locale_default": "zh_Hans_CN", "extensions": ["ndr-transparency-log"]})


@ckan_blueprint.route("/help_show", methods=["GET", "POST"])
def help_show() -> Response:
    name = request.args.get("name", "")
    docs = {"package_search": "Search datasets: q, fq, rows, start, sort, facet.field, "
            "facet.limit", "package_show": "One dataset by id or name",
            "package_list": "Names of public datasets", "organization_list":
            "Organisations", "organization_show": "One organisation",
            "status_show": "Site status"}
    return _envelope("help_show", docs.get(name, "See /api/v1/openapi.json for the full API"))


@ckan_blueprint.route("/<path:action>", methods=["GET", "POST"])
def unknown_action(action: str) -> Response:
    raise CkanError(400, "Bad request", f"Action name not known: {action}")
