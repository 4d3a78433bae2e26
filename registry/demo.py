"""The demo catalogue loaded by `ndr init --demo`: a small, real catalogue to look at and verify.

Why real writes: every demo entry goes through the same actions as the API
(`dataset_create`, `dataset_patch`, `import_batch`), so each one is a true leaf of the log with
a receipt, the search index is filled the same way, and the portal's "verify in your browser"
works on the demo exactly as it would on production data.

Why the files: each Chinese entry names a small CSV under `registry/demo_data/files/` whose SHA-256
is computed here, at load time, from the bytes the portal serves at `/demo-files/<name>` — so
the portal's file check can be tried end to end with a file that really matches.

Why random passwords: a fixed demo password in the repository would end up on some public
server one day. Each demo department user gets a fresh random one, written to
`var/demo-credentials.txt` (0600) and printed once.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.auth.principal import Principal
from registry.auth.users import create_user
from registry.datasets.actions import Services, dataset_create, dataset_patch
from registry.datasets.bulk import import_batch
from registry.importers import datajson
from registry.importers.records import ImportRecord
from registry.organizations.actions import organization_create
from registry.organizations.models import Organization, Role
from registry.state import RegistryState

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
FILES_DIR = DEMO_DIR / "files"
CHINESE_CATALOGUE = DEMO_DIR / "catalogue_zh.json"
US_SAMPLE = DEMO_DIR / "us_federal_sample.json"
CREDENTIALS_FILE_NAME = "demo-credentials.txt"
DEMO_EMAIL_DOMAIN = "demo.ndr.example"

_LOADER = Principal(id="demo:loader", organization_id=None, role=Role.OPERATOR)


def load_demo_catalogue(state: RegistryState) -> str:
    """Load the demo once (only into a registry without organisations); a one-line summary.

    The summary always says where the demo passwords are, and, when the demo was loaded for
    another address than this server's public URL, that its file links point there: the demo's
    URLs are part of logged versions and cannot be rewritten, so the fix is a fresh var/."""
    path = Path(state.settings.var_dir) / CREDENTIALS_FILE_NAME
    with state.db.read() as session:
        if session.scalar(select(func.count()).select_from(Organization)):
            note = "skipped: the registry already has organisations"
            if path.exists():
                note += f"; demo department passwords are in {path}"
                loaded_for = demo_base_url(path)
                here = state.settings.public_url.rstrip("/")
                if loaded_for and loaded_for != here:
                    note += (f"; WARNING: the demo's file links point at {loaded_for}, not "
                             f"{here} (remove {Path(state.settings.var_dir)} and run again "
                             "to reload the demo for this address)")
            return note
    zh = json.loads(CHINESE_CATALOGUE.read_text(encoding="utf-8"))
    us = json.loads(US_SAMPLE.read_text(encoding="utf-8"))
    base_url = state.settings.public_url.rstrip("/")
    with state.db.write() as session:
        for org in [*zh["organizations"], _us_organization(us)]:
            organization_create(session, _LOADER, org)
        published = _publish_chinese(session, state.services, zh["datasets"], base_url)
        _record_an_update(session, state.services, published)
        imported = _import_us_sample(session, state.services, us)
        credentials = _create_department_users(session, zh["organizations"])
    with state.db.write() as session:
        state.log.sign_checkpoint_if_grown(session)
    path = _write_credentials(Path(state.settings.var_dir), credentials, base_url)
    for email, password in credentials:
        print(f"demo user {email}  password {password}")
    return (f"{len(zh['organizations']) + 1} organisations, {len(published)} Chinese and "
            f"{imported} English entries, {len(credentials)} department users "
            f"(passwords in {path})")


def file_distribution(file_name: str, base_url: str) -> dict[str, Any]:
    """A distribution for one demo file, its size and checksum taken from the served bytes."""
    data = (FILES_DIR / file_name).read_bytes()
    url = f"{base_url}/demo-files/{file_name}"
    return {"title": file_name, "access_url": url, "download_url": url, "format": "CSV",
            "media_type": "text/csv", "byte_size": len(data),
            "checksum": {"algorithm": "sha256", "value": hashlib.sha256(data).hexdigest()}}


def _publish_chinese(session: Session, services: Services, entries: list[dict[str, Any]],
                     base_url: str) -> dict[str, str]:
    """Publish each hand-written entry; returns resource code -> dataset id."""
    published = {}
    for entry in entries:
        metadata = dict(entry["metadata"])
        metadata["distributions"] = [file_distribution(entry["file"], base_url)]
        recorded = dataset_create(session, services, _LOADER, {
            "organization": entry["org"], "metadata": metadata,
            "external_id": metadata["resource_code"]})
        published[metadata["resource_code"]] = recorded.dataset.id
    return published


def _record_an_update(session: Session, services: Services, published: dict[str, str]) -> None:
    """A second version of one entry, so the demo shows a version history and its diff."""
    bikes = published.get("11110000000021093K/2024-00101")
    if bikes:
        dataset_patch(session, services, _LOADER, bikes, {
            "metadata": {"keywords": ["公共自行车", "站点", "慢行交通", "共享单车"],
                         "modified": "2025-01-15", "update_cycle": "weekly"},
            "note": "更新周期由每月调整为每周"})


def _us_organization(us: dict[str, Any]) -> dict[str, Any]:
    publisher = us["publisher"]
    return {"id": publisher["id"], "name_en": publisher["name_en"],
            "name_zh": publisher["name_zh"], "kind": "agency", "homepage": publisher["homepage"]}


def _import_us_sample(session: Session, services: Services, us: dict[str, Any]) -> int:
    """The English sample, mapped by the data.json importer and published as one batch."""
    records = [outcome for position, raw in enumerate(us["dataset"], start=1)
               if isinstance(outcome := datajson.map_dataset(position, raw), ImportRecord)]
    summary = import_batch(session, services, _LOADER, us["publisher"]["id"], records)
    return summary.created


def _create_department_users(session: Session, organizations: list[dict[str, Any]],
                             ) -> list[tuple[str, str]]:
    credentials = []
    for org in organizations:
        email = f"{org['id']}@{DEMO_EMAIL_DOMAIN}"
        password = secrets.token_urlsafe(15)
        create_user(session, email=email, display_name=org.get("name_zh") or org["id"],
                    password=password, organization_id=org["id"], role="editor")
        credentials.append((email, password))
    return credentials


_BASE_URL_LINE = "# demo entries link to "


def demo_base_url(path: Path) -> str | None:
    """The public URL the demo's file links were made for (recorded when it was loaded)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(_BASE_URL_LINE):
            return line.removeprefix(_BASE_URL_LINE).strip()
    return None


def _write_credentials(var_dir: Path, credentials: list[tuple[str, str]],
                       base_url: str) -> Path:
    """0600 from the first byte: the file is created with that mode, never chmod-ed later."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / CREDENTIALS_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# demo department users of this registry (e-mail, password)\n")
        out.write(f"{_BASE_URL_LINE}{base_url}\n")
        for email, password in credentials:
            out.write(f"{email}\t{password}\n")
    return path
