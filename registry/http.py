"""Request plumbing shared by the API blueprints: bodies, callers, problems, pagination."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from registry.auth.principal import Principal
from registry.auth.tokens import TOKEN_PREFIX, authenticate_token
from registry.datasets.validation import unstorable_text_errors
from registry.problems import FieldError, Problem, bad_request, unauthorized, validation_failed
from registry.state import RegistryState

PROBLEM_JSON = "application/problem+json"


def registry_state() -> RegistryState:
    return current_app.extensions["ndr"]


def problem_response(problem: Problem) -> Response:
    body = json.dumps(problem.to_json(instance=request.path), ensure_ascii=False)
    response = Response(body, status=problem.status, mimetype=PROBLEM_JSON)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def http_exception_as_problem(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        problem = Problem(413, "Request body too large",
                          f"the body exceeds the limit of {limit} bytes", "body-too-large",
                          [FieldError(f"is larger than {limit} bytes", pointer="")])
    else:
        problem = Problem(status, exc.name, exc.description or "", "about:blank")
    response = problem_response(problem)
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


MAX_JSON_DEPTH = 32       # a dataset entry nests 4 deep; 32 leaves room and stops stack games
MAX_JSON_NUMBER_CHARS = 40  # longer than any 64-bit integer or double needs


class JsonTooComplex(ValueError):
    """Valid JSON the registry refuses to handle: nested too deeply, a number too long, or a
    non-standard constant (NaN, Infinity). Said in words for the client."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_NUMBER_CHARS:
        raise JsonTooComplex(f"a number has {len(text)} digits (at most "
                             f"{MAX_JSON_NUMBER_CHARS} are accepted)")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_JSON_NUMBER_CHARS:
        raise JsonTooComplex(f"a number has {len(text)} characters (at most "
                             f"{MAX_JSON_NUMBER_CHARS} are accepted)")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonTooComplex(f"the number {text[:20]} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise JsonTooComplex(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, walked with an explicit stack (no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_text(text: str | bytes) -> Any:
    """JSON from a client, refusing what would crash or stall later code: nesting deeper than
    MAX_JSON_DEPTH (Python's parser and every recursive walker after it would hit the recursion
    limit: a 500), numbers with thousands of digits (int() refuses over 4300 digits, and big
    ones are slow to convert), NaN and Infinity. Raises JsonTooComplex or JSONDecodeError."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonTooComplex(f"it is nested deeper than {MAX_JSON_DEPTH} levels") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise JsonTooComplex(f"it is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def json_body() -> Any:
    """The request body as JSON, with malformed bodies reported precisely (400)."""
    content_type = (request.mimetype or "").lower()
    if content_type and not (content_type == "application/json"
                             or content_type.endswith("+json")):
        raise Problem(415, "Unsupported media type",
                      f"send application/json, not {content_type}", "unsupported-media-type",
                      [FieldError("must be application/json", name="Content-Type")])
    raw = request.get_data(cache=True)
    if not raw:
        raise bad_request("the request body is empty", errors=[FieldError("is empty", "")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"the body is not valid UTF-8 (byte {exc.start})",
                          errors=[FieldError(f"invalid UTF-8 at byte {exc.start}", "")],
                          slug="invalid-utf8") from None
    try:
        value = parse_json_text(text)
    except JsonTooComplex as exc:
        raise bad_request(f"the body is not acceptable JSON: {exc}",
                          errors=[FieldError(str(exc), "")], slug="json-too-complex") from None
    except json.JSONDecodeError as exc:
        raise bad_request(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                          errors=[FieldError(f"{exc.msg} (line {exc.lineno}, column "
                                             f"{exc.colno})", "")],
                          slug="malformed-json") from None
    unstorable = unstorable_text_errors(value)
    if unstorable:
        raise validation_failed(unstorable)
    return value


def current_principal() -> Principal | None:
    """The caller: a bearer token, or a signed-in portal user (set by the pages blueprint)."""
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    principal: Principal | None = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("use 'Authorization: Bearer <token>'")
        with registry_state().db.read_connection() as connection:
            principal = authenticate_token(connection, token.strip())
        if principal is None:
            raise unauthorized("the token is unknown, expired or revoked")
    else:
        principal = getattr(g, "session_principal", None)
    g.principal = principal
    return principal


_TOKEN_SHAPE = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]{40,}$")
QUERY_TOKEN_NAMES = frozenset({"access_token", "token", "api_key", "apikey", "key", "bearer",
                               "auth", "authorization"})


def refuse_tokens_in_query() -> Response | None:
    """Before every request: a token in the query string is refused (400), never used.

    URLs end up in access logs, proxy logs, browser history and Referer headers, so a token
    there is as good as published (F12). The access log also redacts such parameters
    (registry.access_log), since even a refused request is logged."""
    named = [name for name in request.args
             if name.lower() in QUERY_TOKEN_NAMES
             or any(_TOKEN_SHAPE.match(value) for value in request.args.getlist(name))]
    if not named:
        return None
    return problem_response(bad_request(
        "tokens are not accepted in the URL; send 'Authorization: Bearer <token>' instead "
        "(a URL is written to logs and history). If a token was sent this way, revoke it.",
        errors=[FieldError("must not carry a token; use the Authorization header", name=n)
                for n in named]))


BIGINT_MAX = 2**63 - 1  # the largest integer either database stores


def bounded_int(raw: str | None, default: int | None, minimum: int,
                maximum: int | None) -> int | None:
    """An optional integer parameter; ValueError says, in words for the client, what is wrong.
    Without a stated maximum the bound is the databases' 64-bit integer range."""
    if raw is None or raw == "":
        return default
    upper = BIGINT_MAX if maximum is None else maximum
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("must be an integer") from None
    if not minimum <= value <= upper:
        raise ValueError(f"must be between {minimum} and {upper}")
    return value


def int_arg(name: str, default: int | None = None, *, minimum: int = 0,
            maximum: int | None = None, args: Any = None) -> int | None:
    """An integer query parameter, or a 400 problem naming it."""
    try:
        return bounded_int((request.args if args is None else args).get(name), default,
                           minimum, maximum)
    except ValueError as exc:
        raise bad_request(f"{name} {exc}", errors=[FieldError(str(exc), name=name)]) from None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  ) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False, default=str), status=status,
                        mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
