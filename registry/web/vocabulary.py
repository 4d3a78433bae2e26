"""Human labels for the coded values of the schema (themes, sharing, grades…), translatable.

Kept in one place so the facet sidebar, the dataset page and the department form name a code
the same way; msgids are English, the Chinese comes from translations/zh.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

THEMES = {
    "AGRI": _l("Agriculture, fisheries, forestry and food"),
    "ECON": _l("Economy and finance"),
    "EDUC": _l("Education, culture and sport"),
    "ENER": _l("Energy"),
    "ENVI": _l("Environment"),
    "GOVE": _l("Government and public sector"),
    "HEAL": _l("Health"),
    "INTR": _l("International issues"),
    "JUST": _l("Justice, legal system and public safety"),
    "OP_DATPRO": _l("Provisional data"),
    "REGI": _l("Regions and cities"),
    "SOCI": _l("Population and society"),
    "TECH": _l("Science and technology"),
    "TRAN": _l("Transport"),
}
SHARING_TYPES = {
    "unconditional": _l("Shared unconditionally"),
    "conditional": _l("Shared on conditions"),
    "none": _l("Not shared"),
}
OPEN_ATTRIBUTES = {
    "open": _l("Open unconditionally"),
    "conditional": _l("Open on conditions"),
    "closed": _l("Not open"),
}
UPDATE_CYCLES = {
    "realtime": _l("Real time"), "daily": _l("Daily"), "weekly": _l("Weekly"),
    "monthly": _l("Monthly"), "quarterly": _l("Quarterly"), "semiannual": _l("Half-yearly"),
    "annual": _l("Yearly"), "irregular": _l("Irregular"), "once": _l("Once"),
}
DATA_GRADES = {"core": _l("Core"), "important": _l("Important"), "general": _l("General")}
ITEM_TYPES = ("string", "integer", "decimal", "boolean", "date", "datetime", "binary",
              "geometry", "other")
ITEM_TYPE_LABELS = {
    "string": _l("Text"), "integer": _l("Integer"), "decimal": _l("Decimal"),
    "boolean": _l("Yes/no"), "date": _l("Date"), "datetime": _l("Date and time"),
    "binary": _l("Binary"), "geometry": _l("Geometry"), "other": _l("Other"),
}
ACCESS_RIGHTS = {"public": _l("Public"), "restricted": _l("Restricted"),
                 "non-public": _l("Not public")}
LANGUAGES = {"zh": _l("Chinese"), "en": _l("English")}
STATES = {"draft": _l("Draft"), "published": _l("Published"), "withdrawn": _l("Withdrawn")}
VISIBILITIES = {"public": _l("Public"), "government": _l("Government only")}
CHANGES = {
    "dataset.published": _l("published"), "dataset.updated": _l("updated"),
    "dataset.withdrawn": _l("withdrawn"), "dataset.drafted": _l("draft saved"),
    "dataset.discarded": _l("draft discarded"),
    # A hub's copies of a member registry's versions (see registry/federation/mirror.py).
    "federated.published": _l("published by a member registry"),
    "federated.updated": _l("updated by a member registry"),
    "federated.withdrawn": _l("withdrawn by a member registry"),
}
FACETS = {
    "theme": _l("Theme"), "publisher": _l("Department"), "format": _l("Format"),
    "open_attribute": _l("Open attribute"), "sharing_type": _l("Sharing type"),
    "update_cycle": _l("Update cycle"), "data_grade": _l("Data grade"),
    "keyword": _l("Keyword"), "license": _l("License"), "region": _l("Region"),
}
FACET_VALUE_LABELS = {
    "theme": THEMES, "open_attribute": OPEN_ATTRIBUTES, "sharing_type": SHARING_TYPES,
    "update_cycle": UPDATE_CYCLES, "data_grade": DATA_GRADES,
}
# The metadata fields in the order the dataset page and the version diff present them.
FIELD_LABELS = {
    "title": _l("Title"), "description": _l("Description"), "identifier": _l("Identifier"),
    "resource_code": _l("Resource code"), "classification": _l("Classification"),
    "sharing": _l("Sharing"), "open_attribute": _l("Open attribute"),
    "update_cycle": _l("Update cycle"), "data_grade": _l("Data grade"),
    "keywords": _l("Keywords"), "themes": _l("Themes"), "issued": _l("Issued"),
    "modified": _l("Modified"), "language": _l("Language"), "spatial": _l("Spatial coverage"),
    "temporal": _l("Temporal coverage"), "access_rights": _l("Access rights"),
    "license": _l("License"), "publisher": _l("Publisher (as named in the source)"),
    "contact_point": _l("Contact point"), "landing_page": _l("Landing page"),
    "conforms_to": _l("Conforms to"), "version_notes": _l("Version notes"),
    "related_resource_codes": _l("Related resource codes"), "data_items": _l("Data items"),
    "distributions": _l("Distributions"),
}


ANCHOR_STATUSES = {
    "pending": _l("pending"), "final": _l("final"), "failed": _l("failed"),
}
ANCHOR_BACKENDS = {
    "local": _l("local signed journal"), "local-journal": _l("local signed journal"),
    "evm": _l("EVM chain"),
    "chainmaker": _l("ChainMaker consortium chain"),
}


def label(table: dict[str, object], code: str | None) -> str:
    """The label of a code, or the code itself when the vocabulary does not know it."""
    if code is None:
        return ""
    return str(table.get(code, code))


def language_label(code: str | None) -> str:
    """`en-US` → "English" (the language, by its first subtag); an unknown code as it is."""
    if not code:
        return ""
    return str(LANGUAGES.get(code.split("-")[0].lower(), code))
