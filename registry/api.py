"""The /api/v1 blueprint: datasets, organisations, tokens, anchors and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response
from werkzeug.exceptions import HTTPException

from registry.auth.api import register_token_routes
from registry.datasets.api import register_dataset_routes
from registry.http import http_exception_as_problem, json_response, problem_response
from registry.openapi import openapi_document
from registry.organizations.api import register_organization_routes
from registry.problems import Problem


def openapi() -> Response:
    return json_response(openapi_document())


def create_api_blueprint() -> Blueprint:
    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    register_dataset_routes(bp)
    register_organization_routes(bp)
    register_token_routes(bp)
    bp.add_url_rule("/openapi.json", "openapi", openapi)
    bp.register_error_handler(Problem, problem_response)
    bp.register_error_handler(HTTPException, http_exception_as_problem)
    return bp
