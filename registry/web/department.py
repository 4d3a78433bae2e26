"""Pages for department officers: sign in, their entries, create / edit / withdraw.

Writes call the very actions the API calls (`dataset_create`, `dataset_patch`,
`dataset_withdraw`) inside one `db.write()` transaction, so a portal publish is validated,
logged and indexed exactly like an API publish — and a `Problem` rolls everything back before
the form is shown again with each error beside its field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    dataset_withdraw,
    etag_for,
)
from registry.datasets.models import Dataset, State
from registry.http import registry_state
from registry.organizations.models import Organization, User
from registry.problems import Problem
from registry.web.forms import (
    FormState,
    apply_form,
    attach_errors,
    form_from_metadata,
    form_from_request,
    merge_patch_between,
)
from registry.web.signin import SESSION_KEY, sign_in, sign_out, signed_in_user_id

department = Blueprint("department", __name__, url_prefix="/department")
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
    outcome = sign_in(email, password)  # throttled, locked out after repeated failures (F4)
    if outcome.session_id is None:
        headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else {}
        return render_template("signin.html", email=email, error=outcome.error or _(
            "The e-mail address or the password is wrong.")), outcome.status, headers
    language = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) on every sign-in
    session[SESSION_KEY] = outcome.session_id
    if language:
        session["lang"] = language
    target = request.args.get("next", "")
    safe = target.startswith("/department") and "//" not in target
    return redirect(target if safe else url_for("department.dashboard"))


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
    try:
        with state.db.write() as db_session:
            recorded = dataset_create(db_session, state.services, _principal(), body)
            dataset_id, number = recorded.dataset.id, recorded.version.version
    except Problem as problem:
        attach_errors(form, problem.errors, problem.detail or problem.title)
        return _render_form(form, dataset=None, visibility=body["visibility"],
                            note=body.get("note", "")), problem.status
    return _after_write(dataset_id, number, body["state"])


@department.route("/datasets/<dataset_id>/edit", methods=["GET", "POST"])
@signed_in
def edit_dataset(dataset_id: str) -> Response | tuple[str, int] | str:
    state = registry_state()
    with state.db.read() as db_session:
        dataset, latest = dataset_show(db_session, _principal(), dataset_id)
        base = json.loads(latest.metadata_json)
        context = {"dataset": dataset, "latest": latest}
    if request.method == "GET":
        return _render_form(form_from_metadata(base), visibility=latest.visibility, **context)
    form = form_from_request(request.form)
    body: dict[str, Any] = {"metadata": merge_patch_between(base, apply_form(base, form)),
                            "state": _requested_state(),
                            "visibility": request.form.get("visibility", latest.visibility)}
    if request.form.get("note", "").strip():
        body["note"] = request.form["note"].strip()
    if_match = etag_for(int(request.form.get("base_version", "0") or 0))
    try:
        with state.db.write() as db_session:
            recorded = dataset_patch(db_session, state.services, _principal(), dataset_id,
                                     body, if_match=if_match)
            number = recorded.version.version
    except Problem as problem:
        attach_errors(form, problem.errors, problem.detail or problem.title)
        return _render_form(form, visibility=body["visibility"], note=body.get("note", ""),
                            **context), problem.status
    return _after_write(dataset.id, number, body["state"])


@department.post("/datasets/<dataset_id>/withdraw")
@signed_in
def withdraw_dataset(dataset_id: str) -> Response:
    state = registry_state()
    note = request.form.get("note", "").strip() or None
    try:
        with state.db.write() as db_session:
            dataset_withdraw(db_session, state.services, _principal(), dataset_id, note=note,
                             if_match=etag_for(int(request.form.get("base_version", "0") or 0)))
    except Problem as problem:
        flash(problem.detail or problem.title, "error")
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
