"""DCAT-AP 3 export of the catalogue (RDF: JSON-LD or Turtle), for harvesters such as
data.europa.eu's and for linked-data users. Validated in the tests against SEMIC's official
DCAT-AP 3.0.1 SHACL shapes (mandatory + range) with pyshacl.

The national directory fields, which DCAT has no terms for, are in the `ndr:` namespace.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from registry.datasets import actions, policy
from registry.datasets.field_rules import rdf_date_ok, safe_link
from registry.datasets.models import Dataset, DatasetVersion
from registry.http import current_principal, int_arg, registry_state
from registry.organizations.models import Organization
from registry.problems import FieldError, bad_request

ADMS = Namespace("http://www.w3.org/ns/adms#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
NDR = Namespace("https://schemas.ndr.example/ns#")
EU_THEME = "http://publications.europa.eu/resource/authority/data-theme/"
EU_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
EU_LANGUAGE = "http://publications.europa.eu/resource/authority/language/"
EU_ACCESS = "http://publications.europa.eu/resource/authority/access-right/"
EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
IANA_MEDIA = "https://www.iana.org/assignments/media-types/"
ACCESS_RIGHTS = {"public": "PUBLIC", "restricted": "RESTRICTED", "non-public": "NON_PUBLIC"}
FREQUENCIES = {"realtime": "UPDATE_CONT", "daily": "DAILY", "weekly": "WEEKLY",
               "monthly": "MONTHLY", "quarterly": "QUARTERLY", "semiannual": "ANNUAL_2",
               "annual": "ANNUAL", "irregular": "IRREG", "once": "NEVER"}
LANGUAGES = {"zh": "ZHO", "en": "ENG"}
LANG_TAGS = {"zh": "zh-Hans", "en": "en"}

dcat_blueprint = Blueprint("dcat", __name__)


# Characters an IRI may carry as they are (RFC 3987); anything else in a publisher's URL is
# percent-encoded so the RDF stays serialisable (schemathesis found `<` in a URL breaking Turtle).
_IRI_SAFE = ":/?#[]@!$&'()*+,;=%~.-_"


def iri(value: str) -> URIRef:
    return URIRef(quote(value, safe=_IRI_SAFE))


def _typed(graph: Graph, iri_text: str, kind: URIRef, label: str | None = None) -> URIRef:
    node = iri(iri_text)
    graph.add((node, RDF.type, kind))
    if label is not None:
        graph.add((node, SKOS.prefLabel, Literal(label)))
    return node


def _date(value: str) -> Literal:
    """A typed date, or plain text for a stored value that is no calendar date (validation
    refuses those now; older log entries are never rewritten), so rdflib never logs a
    conversion traceback on export."""
    if not rdf_date_ok(value):
        return Literal(value)
    return Literal(value, datatype=XSD.date if len(value) == 10 else XSD.dateTime)


def _texts(graph: Graph, subject: Any, predicate: URIRef, texts: dict[str, str]) -> None:
    for lang, text in texts.items():
        graph.add((subject, predicate, Literal(text, lang=LANG_TAGS.get(lang, lang))))


def _agent(graph: Graph, base: str, org: Organization) -> URIRef:
    node = URIRef(f"{base}/organizations/{org.id}")
    graph.add((node, RDF.type, FOAF.Agent))
    for lang, name in (("zh", org.name_zh), ("en", org.name_en)):
        if name:
            graph.add((node, FOAF.name, Literal(name, lang=LANG_TAGS[lang])))
    return node


def add_dataset(graph: Graph, base: str, dataset: Dataset, version: DatasetVersion,
                org: Organization) -> URIRef:
    metadata = actions.version_metadata(version)
    node = URIRef(f"{base}/datasets/{dataset.id}")
    graph.add((node, RDF.type, DCAT.Dataset))
    _texts(graph, node, DCTERMS.title, metadata["title"])
    _texts(graph, node, DCTERMS.description, metadata["description"])
    graph.add((node, DCTERMS.identifier, Literal(dataset.id)))
    graph.add((node, DCTERMS.publisher, _agent(graph, base, org)))
    graph.add((node, ADMS.versionNotes, Literal(metadata.get("version_notes")
                                                 or f"version {version.version}")))
    graph.add((node, NDR.metadataSha256, Literal(version.metadata_sha256)))
    if version.leaf_index is not None:
        graph.add((node, NDR.logIndex, Literal(version.leaf_index)))
    for keyword in metadata.get("keywords", []):
        graph.add((node, DCAT.keyword, Literal(keyword)))
    for theme in metadata.get("themes", []):
        graph.add((node, DCAT.theme, _typed(graph, EU_THEME + theme, SKOS.Concept, theme)))
    for field, predicate in (("issued", DCTERMS.issued), ("modified", DCTERMS.modified)):
        if metadata.get(field):
            graph.add((node, predicate, _date(metadata[field])))
    for lang in metadata.get("language", []):
        code = LANGUAGES.get(lang.split("-")[0])
        if code:
            graph.add((node, DCTERMS.language,
                       _typed(graph, EU_LANGUAGE + code, DCTERMS.LinguisticSystem)))
    if metadata.get("access_rights"):
        graph.add((node, DCTERMS.accessRights, _typed(
            graph, EU_ACCESS + ACCESS_RIGHTS[metadata["access_rights"]],
            DCTERMS.RightsStatement)))
    if metadata.get("update_cycle"):
        graph.add((node, DCTERMS.accrualPeriodicity, _typed(
            graph, EU_FREQUENCY + FREQUENCIES[metadata["update_cycle"]], DCTERMS.Frequency)))
    if safe_link(metadata.get("landing_page")):
        graph.add((node, DCAT.landingPage,
                   _typed(graph, metadata["landing_page"], FOAF.Document)))
    for standard in filter(safe_link, metadata.get("conforms_to", [])):
        graph.add((node, DCTERMS.conformsTo, _typed(graph, standard, DCTERMS.Standard)))
    _contact(graph, node, metadata.get("contact_point"))
    _spatial_temporal(graph, node, metadata)
    _national(graph, node, metadata)
    for n, dist in enumerate(metadata.get("distributions", [])):
        graph.add((node, DCAT.distribution, _distribution(graph, node, n, dist, metadata)))
    return node


def _contact(graph: Graph, node: URIRef, contact: dict[str, str] | None) -> None:
    if not contact:
        return
    kind = BNode()
    graph.add((kind, RDF.type, VCARD.Kind))
    if contact.get("name"):
        graph.add((kind, VCARD.fn, Literal(contact["name"])))
    if contact.get("email"):
        graph.add((kind, VCARD.hasEmail, iri("mailto:" + contact["email"])))
    if contact.get("telephone"):
        graph.add((kind, VCARD.hasTelephone, Literal(contact["telephone"])))
    graph.add((node, DCAT.contactPoint, kind))


def _spatial_temporal(graph: Graph, node: URIRef, metadata: dict[str, Any]) -> None:
    spatial = metadata.get("spatial")
    if spatial:
        location = iri(spatial["uri"]) if safe_link(spatial.get("uri")) else BNode()
        graph.add((location, RDF.type, DCTERMS.Location))
        if spatial.get("name"):
            graph.add((location, SKOS.prefLabel, Literal(spatial["name"])))
        if spatial.get("code"):
            graph.add((location, DCTERMS.identifier, Literal(spatial["code"])))
        graph.add((node, DCTERMS.spatial, location))
    temporal = metadata.get("temporal")
    if temporal:
        period = BNode()
        graph.add((period, RDF.type, DCTERMS.PeriodOfTime))
        if temporal.get("start"):
            graph.add((period, DCAT.startDate, _date(temporal["start"])))
        if temporal.get("end"):
            graph.add((period, DCAT.endDate, _date(temporal["end"])))
        graph.add((node, DCTERMS.temporal, period))


def _national(graph: Graph, node: URIRef, metadata: dict[str, Any]) -> None:
    """政务信息资源目录 fields that DCAT lacks."""
    for field, predicate in (("resource_code", NDR.resourceCode),
                             ("open_attribute", NDR.openAttribute),
                             ("data_grade", NDR.dataGrade)):
        if metadata.get(field):
            graph.add((node, predicate, Literal(metadata[field])))
    sharing = metadata.get("sharing")
    if sharing:
        graph.add((node, NDR.sharingType, Literal(sharing["type"])))
        if sharing.get("conditions"):
            graph.add((node, NDR.sharingConditions, Literal(sharing["conditions"])))
    for level, value in (metadata.get("classification") or {}).items():
        graph.add((node, NDR[f"classification_{level}"], Literal(value)))
    for code in metadata.get("related_resource_codes", []):
        graph.add((node, NDR.relatedResourceCode, Literal(code)))
    for item in metadata.get("data_items", []):
        data_item = BNode()
        graph.add((data_item, RDF.type, NDR.DataItem))
        graph.add((data_item, NDR.name, Literal(item["name"])))
        if item.get("type"):
            graph.add((data_item, NDR.type, Literal(item["type"])))
        graph.add((node, NDR.dataItem, data_item))


def _distribution(graph: Graph, dataset: URIRef, n: int, dist: dict[str, Any],
                  metadata: dict[str, Any]) -> URIRef:
    node = URIRef(f"{dataset}/distributions/{n}")
    graph.add((node, RDF.type, DCAT.Distribution))
    if safe_link(dist.get("access_url")):  # only web addresses ever leave as links
        graph.add((node, DCAT.accessURL, iri(dist["access_url"])))
    if safe_link(dist.get("download_url")):
        graph.add((node, DCAT.downloadURL, iri(dist["download_url"])))
    if dist.get("title"):
        graph.add((node, DCTERMS.title, Literal(dist["title"])))
    if dist.get("description"):
        graph.add((node, DCTERMS.description, Literal(dist["description"])))
    if dist.get("format"):
        graph.add((node, DCTERMS.format, _typed(graph, EU_FILE_TYPE + dist["format"],
                                                DCTERMS.MediaTypeOrExtent)))
    if dist.get("media_type"):
        graph.add((node, DCAT.mediaType, _typed(graph, IANA_MEDIA + dist["media_type"],
                                                DCTERMS.MediaType)))
    if dist.get("byte_size") is not None:
        graph.add((node, DCAT.byteSize, Literal(int(dist["byte_size"]),
                                                datatype=XSD.nonNegativeInteger)))
    if dist.get("checksum"):
        checksum = BNode()
        graph.add((checksum, RDF.type, SPDX.Checksum))
        graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        graph.add((checksum, SPDX.checksumValue, Literal(dist["checksum"]["value"],
                                                         datatype=XSD.hexBinary)))
        graph.add((node, SPDX.checksum, checksum))
    license_ = dist.get("license") or metadata.get("license")
    if license_ and safe_link(license_):
        graph.add((node, DCTERMS.license, _typed(graph, license_, DCTERMS.LicenseDocument)))
    return node


def catalog_graph(base: str, entries: list[tuple[Dataset, DatasetVersion, Organization]],
                  publisher: Organization | None = None) -> Graph:
    graph = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("adms", ADMS),
                       ("spdx", SPDX), ("vcard", VCARD), ("skos", SKOS), ("ndr", NDR)):
        graph.bind(prefix, ns)
    catalog = URIRef(f"{base}/catalog")
    graph.add((catalog, RDF.type, DCAT.Catalog))
    graph.add((catalog, DCTERMS.title, Literal("国家数据目录", lang="zh-Hans")))
    graph.add((catalog, DCTERMS.title, Literal("National data registry", lang="en")))
    graph.add((catalog, DCTERMS.description, Literal(
        "Government datasets; every change is a leaf of a verifiable Merkle log.", lang="en")))
    operator = URIRef(f"{base}/#operator")
    graph.add((operator, RDF.type, FOAF.Agent))
    graph.add((operator, FOAF.name, Literal("Registry operator", lang="en")))
    graph.add((catalog, DCTERMS.publisher, operator))
    for dataset, version, org in entries:
        graph.add((catalog, DCAT.dataset, add_dataset(graph, base, dataset, version, org)))
    return graph


def _render(graph: Graph) -> Response:
    fmt = request.args.get("format", "jsonld")
    if fmt not in ("jsonld", "ttl"):
        raise bad_request("format must be jsonld or ttl",
                          errors=[FieldError("must be jsonld or ttl", name="format")])
    if fmt == "ttl":
        return Response(graph.serialize(format="turtle"), mimetype="text/turtle")
    return Response(graph.serialize(format="json-ld", auto_compact=True),
                    mimetype="application/ld+json")


@dcat_blueprint.get("/api/v1/datasets/<ref>/dcat")
def dataset_dcat(ref: str) -> Response:
    state = registry_state()
    with state.db.read() as session:
        dataset, version = actions.dataset_show(session, current_principal(), ref)
        org = session.get(Organization, dataset.organization_id)
        graph = catalog_graph(state.settings.public_url, [(dataset, version, org)])
    return _render(graph)


@dcat_blueprint.get("/api/v1/catalog")
def catalog() -> Response:
    """Released, published datasets the reader may see (`registry.datasets.policy`), in pages
    (`?limit=&after=<dataset id>`), in id order."""
    limit = int_arg("limit", 100, minimum=1, maximum=1000) or 100
    after = request.args.get("after", "")
    state = registry_state()
    with state.db.read() as session:
        rows = session.execute(
            policy.released_versions(current_principal()).add_columns(Organization)
            .join(Organization, Organization.id == Dataset.organization_id)
            .where(Dataset.id > after)
            .order_by(Dataset.id).limit(limit)).all()
        graph = catalog_graph(state.settings.public_url, [tuple(r) for r in rows])
    response = _render(graph)
    if len(rows) == limit:
        response.headers["Link"] = (f'</api/v1/catalog?limit={limit}&after={rows[-1][0].id}'
                                    f'&format={request.args.get("format", "jsonld")}>; '
                                    'rel="next"')
    response.headers["ETag"] = '"' + hashlib.sha256(
        "".join(r[1].metadata_sha256 for r in rows).encode()).hexdigest()[:32] + '"'
    return response
