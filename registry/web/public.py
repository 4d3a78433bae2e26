"""Pages for citizens and firms: home, search, dataset, version diff, organisations.

Every page reads through the same actions and search as the JSON API (`dataset_show`,
`query_from_args`, `run_search`, `hydrate`), so the portal can never show what the API would
hide — drafts and government-only entries follow `registry.datasets.policy` in both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, send_from_directory, url_for
from flask_wtf.csrf import generate_csrf
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound

from registry.datasets.actions import dataset_show, dataset_version, dataset_versions
from registry.datasets.listing import FILTER_ARGS, hydrate, query_from_args, run_search
from registry.datasets.models import DatasetVersion
from registry.datasets.policy import FEDERATED, organization_counts, viewer_for
from registry.demo import FILES_DIR
from registry.federation.proofs import federated_versions
from registry.http import current_principal, http_exception_as_problem, registry_state
from registry.organizations.actions import organization_list, organization_show
from registry.organizations.models import Organization
from registry.web import vocabulary
from registry.web.diffs import envelope_changes, field_changes
from registry.web.i18n import HTML_LANG, current_language
from registry.web.provenance import anchoring_kind, provenance_of
from registry.web.rendering import localized, schema_org_dataset
from search import SearchQuery

public = Blueprint("portal", __name__, static_folder="static", static_url_path="/static",
                   template_folder="templates")

public.add_app_template_global(anchoring_kind, "anchoring_kind")
PORTAL_PAGES = ("portal", "account", "department", "audit")

SEARCH_ARGS = ("q", "sort", "cursor", *FILTER_ARGS)
SIDEBAR_FACETS = ("theme", "publisher", "format", "open_attribute", "sharing_type",
                  "update_cycle", "data_grade", "keyword")
PAGE_SIZE = 20
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII only: "²".isdigit() is True, int("²") fails


# ---------------------------------------------------------------- home


@public.get("/")
def home() -> str:
    state = registry_state()
    principal = current_principal()
    with state.db.read() as session:
        results = run_search(session, state.search, SearchQuery(
            sort="-modified", limit=8, facets=("theme", "publisher"), facet_limit=100,
            viewer=viewer_for(principal)))
        recent = hydrate(session, results)
        organizations = organization_list(session)
    facets = dict(results.facets)
    return render_template("home.html", total=results.total, recent=recent,
                           themes=facets.get("theme", []),
                           tree=organization_tree(organizations,
                                                  dict(facets.get("publisher", []))),
                           department_count=len(organizations))


@dataclass
class OrgNode:
    organization: Organization
    count: int
    children: list[OrgNode]


def organization_tree(organizations: list[Organization], counts: dict[str, int],
                      ) -> list[OrgNode]:
    """Departments as a tree; counts include sub-organisations (the publisher facet does)."""
    nodes = {o.id: OrgNode(o, counts.get(o.id, 0), []) for o in organizations}
    roots = []
    for org in organizations:
        parent = nodes.get(org.parent_id or "")
        (parent.children if parent else roots).append(nodes[org.id])
    return roots


# ---------------------------------------------------------------- search


def search_args() -> MultiDict[str, str]:
    """The request's search arguments only (the page's own, like ?lang=, are not the API's)."""
    args: MultiDict[str, str] = MultiDict()
    for name in SEARCH_ARGS:
        for value in request.args.getlist(name):
            if value != "":
                args.add(name, value)
    return args


def link_with(args: MultiDict[str, str], *, add: tuple[str, str] | None = None,
              remove: tuple[str, str] | None = None, cursor: str | None = None) -> str:
    """The results URL with one filter added or removed; any change returns to page one."""
    pairs = [(k, v) for k, v in args.items(multi=True) if k != "cursor" and (k, v) != remove]
    if add and add not in pairs:
        pairs.append(add)
    if cursor:
        pairs.append(("cursor", cursor))
    merged: dict[str, list[str]] = {}
    for key, value in pairs:
        merged.setdefault(key, []).append(value)
    return url_for("portal.search", **merged)  # type: ignore[arg-type]


@public.get("/datasets")
def search() -> str:
    state = registry_state()
    principal = current_principal()
    args = search_args()
    query_args = MultiDict(args)
    query_args.setlist("facet", list(SIDEBAR_FACETS))
    query_args["limit"] = str(PAGE_SIZE)
    query_args["facet_limit"] = "12"
    query = query_from_args(query_args, principal)
    with state.db.read() as session:
        results = run_search(session, state.search, query)
        items = hydrate(session, results)
        names = organization_names(session)
    selected = [(k, v) for k, v in args.items(multi=True) if k in FILTER_ARGS]
    return render_template(
        "search.html", q=args.get("q", ""), sort=args.get("sort", ""), total=results.total,
        items=items, facets=[(name, results.facets.get(name, [])) for name in SIDEBAR_FACETS],
        selected=selected, args=args, link_with=link_with, org_names=names,
        next_url=link_with(args, cursor=results.next_cursor) if results.next_cursor else None,
        first_url=link_with(args) if args.get("cursor") else None,
        loosened=results.loosened_query, suggestion=results.suggestion,
        related=results.related)


def organization_names(session: Session) -> dict[str, dict[str, str | None]]:
    return {o.id: {"zh": o.name_zh, "en": o.name_en} for o in organization_list(session)}


# ---------------------------------------------------------------- dataset


@public.get("/datasets/<ref>")
def dataset_page(ref: str) -> str:
    return render_dataset(ref, None)


@public.get("/datasets/<ref>/versions/<int:number>")
def version_page(ref: str, number: int) -> str:
    return render_dataset(ref, number)


def render_dataset(ref: str, number: int | None) -> str:
    state = registry_state()
    principal = current_principal()
    with state.db.read() as session:
        dataset, latest = dataset_show(session, principal, ref)
        version = latest if number is None else dataset_version(session, principal, ref,
                                                                number)[1]
        _, versions = dataset_versions(session, principal, ref)
        history = [(v, provenance_of(session, state, v.leaf_index)) for v in reversed(versions)]
        federated = federated_versions(session, dataset.id) if any(
            v.change.startswith(FEDERATED) for v in versions) else {}
        organization = organization_show(session, dataset.organization_id)
        ancestry = organization.ancestry()
    metadata = json.loads(version.metadata_json)
    language = current_language()
    page_url = url_for("portal.dataset_page", ref=dataset.slug, _external=True)
    json_url = f"/api/v1/datasets/{dataset.id}"
    structured = schema_org_dataset(
        metadata, url=page_url, json_url=json_url, version=version.version,
        publisher=localized({"zh": organization.name_zh, "en": organization.name_en}, "zh"))
    return render_template(
        "dataset.html", dataset=dataset, version=version, latest=latest, metadata=metadata,
        history=history, organization=organization, ancestry=ancestry, json_url=json_url,
        structured=structured, extra_fields=_extra_fields(metadata), language=language,
        federated=federated,
        logged_versions=[v.version for v, p in history if p is not None])


PAGE_FIELDS = {"title", "description", "keywords", "themes", "distributions", "data_items",
               "resource_code", "classification", "sharing", "open_attribute", "update_cycle",
               "data_grade", "issued", "modified", "spatial", "temporal", "license",
               "contact_point", "landing_page", "access_rights", "language", "identifier"}


def _extra_fields(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """Fields the page has no dedicated place for, shown as JSON so none is ever hidden."""
    return [(k, json.dumps(v, ensure_ascii=False, indent=1)) for k, v in metadata.items()
            if k not in PAGE_FIELDS]


# ---------------------------------------------------------------- version diff


@public.get("/datasets/<ref>/changes")
def version_diff(ref: str) -> str:
    state = registry_state()
    principal = current_principal()
    with state.db.read() as session:
        dataset, versions = dataset_versions(session, principal, ref)
    numbers = [v.version for v in versions]
    older = _version_arg("from", numbers, default=numbers[-2] if len(numbers) > 1 else numbers[0])
    newer = _version_arg("to", numbers, default=numbers[-1])
    by_number: dict[int, DatasetVersion] = {v.version: v for v in versions}
    changes = field_changes(json.loads(by_number[older].metadata_json),
                            json.loads(by_number[newer].metadata_json))
    return render_template("diff.html", dataset=dataset, versions=versions, older=older,
                           newer=newer, changes=changes, envelope=envelope_changes(
                               by_number[older], by_number[newer]))


def _version_arg(name: str, numbers: list[int], default: int) -> int:
    raw = request.args.get(name, "")
    if raw == "":
        return default
    if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) not in numbers:
        abort(404)
    return int(raw)


# ---------------------------------------------------------------- organisations


@public.get("/organizations")
def organizations() -> str:
    state = registry_state()
    principal = current_principal()
    with state.db.read() as session:
        orgs = organization_list(session)
        counts = organization_counts(session, principal)
    return render_template("organizations.html", tree=organization_tree(orgs, counts))


@public.get("/organizations/<org_id>")
def organization_page(org_id: str) -> str:
    state = registry_state()
    principal = current_principal()
    with state.db.read() as session:
        organization = organization_show(session, org_id)
        ancestry = organization.ancestry()
        children = [o for o in organization_list(session) if o.parent_id == org_id]
        results = run_search(session, state.search, SearchQuery(
            filters={"publisher": [org_id]}, sort="-modified", limit=PAGE_SIZE,
            viewer=viewer_for(principal)))
        items = hydrate(session, results)
    return render_template("organization.html", organization=organization, ancestry=ancestry,
                           children=children, items=items, total=results.total,
                           more_url=url_for("portal.search", publisher=org_id))


# ---------------------------------------------------------------- demo files


@public.get("/demo-files/<name>")
def demo_file(name: str) -> Response:
    """The demo's data files, so the file check can be tried with a file that matches."""
    return send_from_directory(FILES_DIR, name, mimetype="text/csv", as_attachment=True)


# ---------------------------------------------------------------- unknown addresses


@public.app_errorhandler(404)
def address_not_found(exc: NotFound) -> Response | tuple[str, int] | NotFound:
    """An address no route knows. The JSON API keeps its problem+json; any other address a
    person typed gets the portal's page in their language, not werkzeug's English text.
    (Addresses inside the portal's blueprints never get here: their own handler answers.)"""
    if request.path.startswith(("/api/v1/", "/log/")):
        return http_exception_as_problem(exc)
    if request.path.startswith("/api/"):
        return exc
    if request.blueprint in PORTAL_PAGES:  # the portal's own context is there: use it
        return render_template("error.html", status=404, title="", detail=""), 404
    language = current_language()
    return render_template(
        "error.html", status=404, title="", detail="", lang=language,
        html_lang=HTML_LANG[language], csrf_token=generate_csrf, vocab=vocabulary,
        label=vocabulary.label, principal=None, user_name=None,
        text=lambda value: localized(value, language),
        switch_language_url=lambda wanted: url_for("portal.home", lang=wanted)), 404
