"""Pages for department officers: sign in, their entries, create / edit / withdraw.

Writes call the very actions the API calls (`dataset_create`, `dataset_patch`,
`dataset_withdraw`) inside one `db.write()` transaction, so a portal publish is validated,
logged and indexed exactly like an API publish — and a `Problem` rolls everything back before
the form is shown again with each error beside its field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from registry.auth.principal import Principal
from registry.auth.users import principal_for_user
from registry.datasets.actions import (
    dataset_create,
    dataset_patch,
    dataset_show,
    dataset_version,
    dataset_withdraw,
    etag_for,
)
from registry.datasets.merge_patch import merge_patch
from registry.datasets.models import Dataset, DatasetVersion, State
from registry.http import registry_state
from registry.organizations.models import Organization, User
from registry.problems import Problem
from registry.web.diffs import FieldChange, envelope_changes, field_changes
from registry.web.forms import (
    FormState,
    apply_form,
    attach_errors,
    damaged_form_message,
    form_from_metadata,
    form_from_request,
    form_label,
    merge_patch_between,
    whole_number,
)
from registry.web.safe_redirect import department_target
from registry.web.signin import SESSION_KEY, sign_in, sign_out, signed_in_user_id

department = Blueprint("department", __name__, url_prefix="/department")
department.add_app_template_global(form_label, "form_label")
signin_pages = Blueprint("account", __name__)

View = TypeVar("View", bound=Callable[..., Any])


def load_session_principal() -> None:
    """Before each portal request: the signed-in user becomes the principal actions see."""
    user_id = signed_in_user_id()  # only while the server-side session is open (F7)
    if not user_id:
        return
    with registry_state().db.read() as db_session:
        user = db_session.get(User, user_id)
        if user is None or user.disabled:
            session.pop(SESSION_KEY, None)
            return
        g.session_principal = principal_for_user(db_session, user)
        g.user_name = user.display_name or user.email


def signed_in(view: View) -> View:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(g, "session_principal", None) is None:
            return redirect(url_for("account.signin", next=request.path))
        return view(*args, **kwargs)
    return cast(View, wrapper)


def _principal() -> Principal:
    return cast(Principal, g.session_principal)


# ---------------------------------------------------------------- sign in / out


@signin_pages.route("/signin", methods=["GET", "POST"])
def signin() -> Response | tuple[str, int, dict[str, str]] | str:
    if request.method == "GET":
        return render_template("signin.html", email="", error=None)
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    # No account has a NUL in its address, and PostgreSQL text cannot even hold one: such an
    # address is looked up as "" (same work, same refusal) instead of failing in the query.
    lookup = "" if "\x00" in email else email
    outcome = sign_in(lookup, password)  # throttled, locked out after repeated failures (F4)
    if outcome.session_id is None:
        headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else {}
        return render_template("signin.html", email=email, error=outcome.error or _(
            "The e-mail address or the password is wrong.")), outcome.status, headers
    language = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) on every sign-in
    session[SESSION_KEY] = outcome.session_id
    if language:
        session["lang"] = language
    return redirect(department_target(request.args.get("next", ""))
                    or url_for("department.dashboard"))


@signin_pages.post("/signout")
def signout() -> Response:
    sign_out()  # ends the session on the server: a copied cookie stops working
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    return redirect(url_for("portal.home"))


# ---------------------------------------------------------------- dashboard


@department.get("/")
@signed_in
def dashboard() -> str:
    principal = _principal()
    with registry_state().db.read() as db_session:
        query = select(Dataset).order_by(Dataset.modified_at.desc()).limit(500)
        if not principal.is_operator:
            query = query.where(Dataset.organization_id == principal.organization_id)
        datasets = list(db_session.scalars(query))
        organization = db_session.get(Organization, principal.organization_id or "")
    return render_template("dashboard.html", datasets=datasets, organization=organization)


# ---------------------------------------------------------------- create / edit / withdraw


def _requested_state() -> str:
    return State.PUBLISHED.value if request.form.get("action") == "publish" \
        else State.DRAFT.value


def problem_message(problem: Problem) -> str:
    """Why the registry refused a write, for the officer (the API's detail is for developers)."""
    if problem.status == 403:
        return _("Your account may not change this department's entries.")
    if problem.status == 404:
        return _("This entry no longer exists, or your account cannot see it.")
    if problem.status == 409 and any(e.pointer == "/state" for e in problem.errors):
        return _("This entry is withdrawn: choose Publish to publish it again.")
    if problem.status == 409:
        return _("The change conflicts with another entry of the registry.")
    if problem.status == 412:
        return _("Someone else saved a newer version of this entry.")
    if problem.status == 413:
        return _("The entry is too large to be saved.")
    if problem.status == 429:
        return _("Too many changes in a short time: wait a moment and save again.")
    if problem.status >= 500:
        return _("The registry cannot record changes at the moment, so nothing was saved. "
                 "Please try again later.")
    return _("The registry refused the change, so nothing was saved.")


@department.route("/datasets/new", methods=["GET", "POST"])
@signed_in
def new_dataset() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        return _render_form(form_from_metadata({}), dataset=None, visibility="public")
    state = registry_state()
    form = form_from_request(request.form)
    body: dict[str, Any] = {
        "organization": _principal().organization_id,
        "metadata": apply_form({}, form), "state": _requested_state(),
        "visibility": request.form.get("visibility", "public")}
    if request.form.get("note", "").strip():
        body["note"] = request.form["note"].strip()
    if form.general_errors:
        return _render_form(form, dataset=None, visibility=body["visibility"],
                            note=body.get("note", "")), 400
    try:
        with state.db.write() as db_session:
            recorded = dataset_create(db_session, state.services, _principal(), body)
            dataset_id, number = recorded.dataset.id, recorded.version.version
    except Problem as problem:
        attach_errors(form, problem.errors, problem_message(problem))
        return _render_form(form, dataset=None, visibility=body["visibility"],
                            note=body.get("note", "")), problem.status
    return _after_write(dataset_id, number, body["state"])


@dataclass(frozen=True)
class Conflict:
    """An edit of version `base` while `latest` was saved by someone else."""

    base: DatasetVersion
    latest: DatasetVersion
    yours: list[FieldChange]
    theirs: list[FieldChange]
    their_envelope: list[tuple[str, str, str]]
    both: set[str]


@department.route("/datasets/<dataset_id>/edit", methods=["GET", "POST"])
@signed_in
def edit_dataset(dataset_id: str) -> Response | tuple[str, int] | str:
    state = registry_state()
    with state.db.read() as db_session:
        dataset, latest = dataset_show(db_session, _principal(), dataset_id)
        context = {"dataset": dataset, "latest": latest}
    if request.method == "GET":
        return _render_form(form_from_metadata(json.loads(latest.metadata_json)),
                            visibility=latest.visibility, **context)
    form = form_from_request(request.form)
    visibility = request.form.get("visibility", latest.visibility)
    note = request.form.get("note", "").strip()
    base_number = whole_number(request.form.get("base_version"))
    base = _version_or_none(dataset.id, base_number) if base_number else None
    if base is None and damaged_form_message() not in form.general_errors:
        form.general_errors.append(damaged_form_message())
    if form.general_errors or base is None:
        return _render_form(form, visibility=visibility, note=note, **context), 400
    if base.version != latest.version:
        return _conflict_page(dataset, base, form, visibility, note), 409
    base_metadata = json.loads(base.metadata_json)
    body: dict[str, Any] = {
        "metadata": merge_patch_between(base_metadata, apply_form(base_metadata, form)),
        "state": _requested_state(), "visibility": visibility}
    if note:
        body["note"] = note
    try:
        with state.db.write() as db_session:
            recorded = dataset_patch(db_session, state.services, _principal(), dataset_id,
                                     body, if_match=etag_for(base.version))
            number = recorded.version.version
    except Problem as problem:
        if problem.status == 412:  # saved by someone else between our read and our write
            return _conflict_page(dataset, base, form, visibility, note), 409
        attach_errors(form, problem.errors, problem_message(problem))
        return _render_form(form, visibility=visibility, note=note, **context), problem.status
    return _after_write(dataset.id, number, body["state"])


def _version_or_none(dataset_id: str, number: int) -> DatasetVersion | None:
    with registry_state().db.read() as db_session:
        try:
            return dataset_version(db_session, _principal(), dataset_id, number)[1]
        except Problem:
            return None


def _conflict_page(dataset: Dataset, base: DatasetVersion, form: FormState, visibility: str,
                   note: str) -> str:
    """Both changes side by side, and the officer's change re-applied onto the newest version
    in a form they must review and save themselves: nothing is merged behind their back."""
    with registry_state().db.read() as db_session:
        dataset, latest = dataset_show(db_session, _principal(), dataset.id)
    base_metadata = json.loads(base.metadata_json)
    latest_metadata = json.loads(latest.metadata_json)
    mine = apply_form(base_metadata, form)
    yours = field_changes(base_metadata, mine)
    theirs = field_changes(base_metadata, latest_metadata)
    both = {c.path for c in yours} & {c.path for c in theirs}
    reapplied = merge_patch(latest_metadata, merge_patch_between(base_metadata, mine))
    conflict = Conflict(base=base, latest=latest, yours=yours, theirs=theirs,
                        their_envelope=envelope_changes(base, latest), both=both)
    return render_template("conflict.html", conflict=conflict, form=form_from_metadata(reapplied),
                           dataset=dataset, latest=latest, visibility=visibility, note=note)


@department.post("/datasets/<dataset_id>/withdraw")
@signed_in
def withdraw_dataset(dataset_id: str) -> Response:
    state = registry_state()
    note = request.form.get("note", "").strip() or None
    base_number = whole_number(request.form.get("base_version"))
    if base_number is None:
        flash(damaged_form_message(), "error")
        return redirect(url_for("department.edit_dataset", dataset_id=dataset_id))
    try:
        with state.db.write() as db_session:
            dataset_withdraw(db_session, state.services, _principal(), dataset_id, note=note,
                             if_match=etag_for(base_number))
    except Problem as problem:
        message = problem_message(problem)
        if problem.status == 412:
            message = _("Someone else saved a newer version of this entry, so it was not "
                        "withdrawn. Look at the newest version below before you withdraw it.")
        flash(message, "error")
        return redirect(url_for("department.edit_dataset", dataset_id=dataset_id))
    flash(_("The entry was withdrawn. Its earlier versions stay in the log."), "ok")
    return redirect(url_for("department.dashboard"))
def _after_write(dataset_id: str, number: int, requested: str) -> Response:
    if requested == State.PUBLISHED:
        flash(_("Published as version %(n)s.", n=number), "ok")
        return redirect(url_for("portal.dataset_page", ref=dataset_id))
    flash(_("Draft saved as version %(n)s. Only your department can see it.", n=number), "ok")
    return redirect(url_for("department.edit_dataset", dataset_id=dataset_id))


def _render_form(form: FormState, *, dataset: Dataset | None, visibility: str,
                 latest: Any = None, note: str = "") -> str:
    return render_template("edit.html", form=form, dataset=dataset, latest=latest,
                           visibility=visibility, note=note)
