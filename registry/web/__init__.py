"""The bilingual web portal (中文 by default, English on request).

`create_pages_blueprint(app)` is called by `app.create_app()` when this package exists. It
wires the portal's blueprints and, around them only, what a browser-facing site needs and the
JSON API must not get: the cookie session (a signed-in officer becomes
`g.session_principal`), CSRF checks, the language choice. Security headers are added to every
HTML response of the application.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, g, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException

from registry.datasets.field_rules import safe_link
from registry.federation.network_page import network
from registry.http import refuse_tokens_in_query
from registry.problems import Problem
from registry.web import vocabulary
from registry.web.audit import audit
from registry.web.department import department, load_session_principal, signin_pages
from registry.web.i18n import HTML_LANG, configure_babel, current_language, remember_language_choice
from registry.web.public import public
from registry.web.rendering import json_ld, localized, render_markdown, safe_highlight
from registry.web.security import (
    add_security_headers,
    configure_session,
    require_csrf,
    trust_proxies,
)
from registry.web.signin import install_signin_limits, too_many_signins

PORTAL_BLUEPRINTS: tuple[Blueprint, ...] = (public, signin_pages, department, audit, network)


def _prepare_blueprints() -> None:
    """Hooks on the portal's blueprints, set once at import (blueprints are shared by apps)."""
    for blueprint in PORTAL_BLUEPRINTS:
        blueprint.before_request(remember_language_choice)
        blueprint.before_request(load_session_principal)
        blueprint.before_request(require_csrf)
        blueprint.register_error_handler(Problem, problem_page)
        blueprint.register_error_handler(HTTPException, http_error_page)
    signin_pages.register_error_handler(429, too_many_signins)


def create_pages_blueprint(app: Flask) -> None:
    settings = registry_state_from(app).settings
    configure_session(app, Path(settings.secret_key_file or settings.var_dir /
                                "session-secret.key"), settings.public_url)
    configure_babel(app)
    trust_proxies(app, settings.trusted_proxies)
    app.before_request(refuse_tokens_in_query)
    app.after_request(add_security_headers)
    _register_template_helpers(app)
    for blueprint in PORTAL_BLUEPRINTS:
        app.register_blueprint(blueprint)
    install_signin_limits(app)


def registry_state_from(app: Flask) -> Any:
    return app.extensions["ndr"]


def problem_page(problem: Problem) -> tuple[str, int]:
    """An action's Problem as a page, in the reader's language, not problem+json."""
    return render_template("error.html", status=problem.status, title=problem.title,
                           detail=problem.detail), problem.status


def http_error_page(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    detail = "csrf" if exc.description == "csrf" else ""
    return render_template("error.html", status=status, title=exc.name,
                           detail=detail), status


def _switch_language_url(language: str) -> str:
    args = request.args.to_dict(flat=False)
    args["lang"] = [language]
    endpoint = request.endpoint or "portal.home"
    return url_for(endpoint, **(request.view_args or {}), **args)  # type: ignore[arg-type]


def _human_size(size: Any) -> str:
    if not isinstance(size, int):
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


def _register_template_helpers(app: Flask) -> None:
    app.jinja_env.filters.update(
        markdown=render_markdown, highlight=safe_highlight, json_ld=json_ld,
        human_size=_human_size, safe_link=safe_link,
        datetime=lambda value: format_datetime(value, "medium"))
    app.jinja_env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}

    @app.context_processor
    def _portal_context() -> dict[str, Any]:
        if request.blueprint not in {b.name for b in PORTAL_BLUEPRINTS}:
            return {}
        language = current_language()
        return {
            "lang": language, "html_lang": HTML_LANG[language], "locale": get_locale(),
            "csrf_token": generate_csrf, "switch_language_url": _switch_language_url,
            "text": lambda value: localized(value, language),
            "vocab": vocabulary, "label": vocabulary.label,
            "user_name": getattr(g, "user_name", None),
            "principal": getattr(g, "session_principal", None),
        }


_prepare_blueprints()
