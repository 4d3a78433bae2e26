"""`create_app()` — the Flask application factory (`gunicorn "app:create_app()"`)."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from anchoring.log_store import LogError
from registry.bootstrap import build_state, start_background
from registry.config import Settings
from registry.http import http_exception_as_problem, problem_response
from registry.problems import FieldError, Problem, bad_request
from registry.state import RegistryState


def _wants_problem_json() -> bool:
    return request.path.startswith(("/api/v1/", "/log/"))


def create_app(settings: Settings | None = None, *, state: RegistryState | None = None,
               background: bool | None = None) -> Flask:
    settings = settings or (state.settings if state else Settings())
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["JSON_AS_ASCII"] = False
    state = state or build_state(settings)
    app.extensions["ndr"] = state

    from registry.anchors_api import anchors_blueprint
    from registry.api import create_api_blueprint
    from registry.ckan_api import ckan_blueprint
    from registry.dcat import dcat_blueprint
    from registry.federation.api import federation_blueprint
    from registry.log_views import log_blueprint
    from registry.ops import ops_blueprint
    from registry.web import create_pages_blueprint

    app.register_blueprint(create_api_blueprint())
    app.register_blueprint(log_blueprint)
    app.register_blueprint(anchors_blueprint)
    app.register_blueprint(ckan_blueprint)
    app.register_blueprint(dcat_blueprint)
    # CKAN serves its action API with and without the version; ckanapi uses /api/action.
    app.register_blueprint(ckan_blueprint, url_prefix="/api/action", name="ckan_unversioned")
    app.register_blueprint(ops_blueprint)
    app.register_blueprint(federation_blueprint)
    create_pages_blueprint(app)  # the portal: pages, Babel, CSRF, security headers

    @app.before_request
    def _refuse_nul_characters() -> Response | None:
        """PostgreSQL text cannot hold U+0000 and no legitimate parameter needs it; refuse it
        at the edge (400 naming the parameter) instead of failing deep in a query."""
        bad = [name for name, values in request.args.lists()
               if "\x00" in name or any("\x00" in v for v in values)]
        bad += [name for name, value in (request.view_args or {}).items()
                if isinstance(value, str) and "\x00" in value]
        if not bad:
            return None
        return problem_response(bad_request(
            "parameters may not contain NUL characters",
            errors=[FieldError("contains a NUL character", name=n) for n in bad]))

    @app.errorhandler(Problem)
    def _problem(problem: Problem) -> Response:
        return problem_response(problem)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        return http_exception_as_problem(exc) if _wants_problem_json() else exc

    @app.errorhandler(LogError)
    def _log_unavailable(exc: LogError) -> Response:
        """The log cannot back a write or a proof with a signed checkpoint (damaged storage,
        or halted by the self-audit): 503 with the reason, never a 500 or a bare receipt."""
        logging.getLogger("ndr").error("log unavailable on %s %s: %s", request.method,
                                       request.path, exc)
        return problem_response(Problem(
            503, "Transparency log unavailable",
            f"the log cannot sign a checkpoint, so nothing was recorded: {exc}",
            "log-unavailable", headers={"Retry-After": "60"}))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logging.getLogger("ndr").exception("unhandled error on %s %s", request.method,
                                           request.path)
        return problem_response(Problem(500, "Internal server error",
                                        "the registry failed to handle this request; "
                                        "nothing was written", "internal"))

    if settings.run_background if background is None else background:
        start_background(state)
    return app
