"""Validation of request bodies and metadata against the JSON Schemas in `schemas/`.

The validators are compiled once per process (schema compilation costs far more than a
validation). Every error is reported, each with the JSON Pointer of the failing field, so a
data officer fixes a form in one round trip instead of one error at a time.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from registry.config import PROJECT_ROOT
from registry.datasets.field_rules import (
    SAFE_CONTACT_URL_PATTERN,
    SAFE_URL_PATTERN,
    URL_MESSAGE,
    calendar_problem,
    date_field_errors,
)
from registry.problems import FieldError, validation_failed

SCHEMA_DIR = PROJECT_ROOT / "schemas"


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@cache
def metadata_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("dataset.schema.json"))


class _YesNo(Protocol):
    def is_valid(self, instance: Any) -> bool: ...


@cache
def _fast_metadata_check() -> _YesNo | None:
    """`jsonschema_rs` compiled from the same schema file (None when it is not installed): a
    yes/no in microseconds. Pure-Python jsonschema took about a fifth of a publish's CPU, and
    almost every entry is valid and needs no message. `validate_formats=False` matches
    jsonschema's default (format is an annotation in 2020-12; the `pattern`s carry the rules)."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.Draft202012Validator(load_schema("dataset.schema.json"),
                                              validate_formats=False)


def _surely_valid(check: _YesNo | None, instance: Any) -> bool:
    """jsonschema_rs's yes; False also when it is missing or cannot take the text (lone
    surrogates), and then the reference decides."""
    if check is None:
        return False
    try:
        return check.is_valid(instance)
    except (ValueError, UnicodeError):
        return False


def metadata_surely_valid(metadata: Any) -> bool:
    return _surely_valid(_fast_metadata_check(), metadata)


def metadata_schema_errors(metadata: Any, prefix: str = "/metadata") -> list[FieldError]:
    """The schema's verdict: jsonschema_rs says whether there is anything to report; only
    then does jsonschema (the reference) find every error with its message."""
    if metadata_surely_valid(metadata):
        return []
    return collect_errors(metadata_validator(), metadata, prefix)


@cache
def _request_schemas() -> tuple[dict[str, Any], Registry]:
    envelope = load_schema("dataset-request.schema.json")
    registry: Registry = Registry().with_resource(envelope["$id"],
                                                  Resource.from_contents(envelope))
    return envelope, registry


@cache
def request_validator(kind: str) -> Draft202012Validator:
    envelope, registry = _request_schemas()
    return Draft202012Validator({"$ref": f"{envelope['$id']}#/$defs/{kind}"}, registry=registry)


def _escape(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(path: list[str | int] | tuple[str | int, ...] | Any, prefix: str = "") -> str:
    return prefix + "".join("/" + _escape(p) for p in path)


def _field_errors(error: ValidationError, prefix: str) -> list[FieldError]:
    """Flatten one jsonschema error into per-field errors that name the field itself."""
    base = list(error.absolute_path)
    if error.validator == "required":
        missing = [p for p in error.validator_value if isinstance(error.instance, dict)
                   and p not in error.instance]
        return [FieldError("is required", pointer_of([*base, p], prefix)) for p in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        return [FieldError("is not a known field", pointer_of([*base, k], prefix))
                for k in unknown]
    if error.validator in ("anyOf", "oneOf") and error.context:
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        return _field_errors(deepest, prefix)
    return [FieldError(_message(error), pointer_of(base, prefix))]


def _message(error: ValidationError) -> str:
    if error.validator == "pattern" and error.validator_value in (SAFE_URL_PATTERN,
                                                                   SAFE_CONTACT_URL_PATTERN):
        return URL_MESSAGE + (" or mailto:" if error.validator_value
                              == SAFE_CONTACT_URL_PATTERN else "")
    if (error.validator == "pattern" and str(error.validator_value).startswith("^(?!0000)")
            and isinstance(error.instance, str) and error.instance.startswith("0000")):
        return calendar_problem(error.instance) or "is out of range"
    if error.validator == "pattern":
        return f"does not match the expected form ({error.validator_value})"
    if error.validator == "enum":
        return "must be one of: " + ", ".join(map(str, error.validator_value))
    if error.validator == "type":
        return f"must be of type {error.validator_value}"
    return error.message


def collect_errors(validator: Draft202012Validator, instance: Any,
                   prefix: str = "") -> list[FieldError]:
    errors: list[FieldError] = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        errors.extend(_field_errors(error, prefix))
    seen: set[tuple[str | None, str]] = set()
    unique = []
    for e in errors:
        if (e.pointer, e.detail) not in seen:
            seen.add((e.pointer, e.detail))
            unique.append(e)
    return unique


_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable_text_errors(value: Any, pointer: str = "") -> list[FieldError]:
    """Text the registry cannot store: JSON may escape lone UTF-16 surrogates (\\udc92), which
    are not Unicode at all and cannot be canonicalised (RFC 8785), and U+0000, which
    PostgreSQL text cannot hold. Both are field errors, found before anything is written."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return [FieldError("contains an unpaired UTF-16 surrogate (not valid Unicode)",
                               pointer)]
        if "\x00" in value:
            return [FieldError("contains a NUL character (U+0000)", pointer)]
        return []
    if isinstance(value, dict):
        errors = []
        for key, item in value.items():
            child = f"{pointer}/{_escape(key)}"
            if _SURROGATE.search(key) or "\x00" in key:
                errors.append(FieldError("the field name contains an unpaired UTF-16 "
                                         "surrogate", child))
            errors.extend(unstorable_text_errors(item, child))
        return errors
    if isinstance(value, list):
        return [e for i, item in enumerate(value)
                for e in unstorable_text_errors(item, f"{pointer}/{i}")]
    return []


def metadata_errors(metadata: Any, prefix: str = "/metadata") -> list[FieldError]:
    unstorable = unstorable_text_errors(metadata, prefix)
    if unstorable:
        return unstorable
    errors = metadata_schema_errors(metadata, prefix)
    named = {e.pointer for e in errors}
    # The schema checks a date's form; whether the day exists (no 2024-02-30, no year 0000)
    # needs the calendar.
    return errors + [FieldError(message, prefix + pointer)
                     for pointer, message in date_field_errors(metadata)
                     if prefix + pointer not in named]


def canonical_or_field_errors(metadata: Any, prefix: str = "/metadata") -> bytes:
    """Canonical bytes of already-validated metadata; text that is not Unicode becomes a 422
    naming the field (found by a walk only in that rare case, so the common path stays fast)."""
    from registry.datasets.canonical import NotCanonicalisable, canonical_metadata

    try:
        canonical = canonical_metadata(metadata)
    except NotCanonicalisable:
        errors = unstorable_text_errors(metadata, prefix) or [
            FieldError("cannot be written as canonical JSON (RFC 8785)", prefix)]
        raise validation_failed(errors) from None
    if b"\\u0000" in canonical:  # canonical JSON escapes U+0000; PostgreSQL cannot store it
        raise validation_failed(unstorable_text_errors(metadata, prefix))
    return canonical


def require_valid_metadata(metadata: Any, prefix: str = "/metadata") -> None:
    errors = metadata_errors(metadata, prefix)
    if errors:
        raise validation_failed(errors)


@cache
def _fast_request_check(kind: str) -> _YesNo | None:
    """jsonschema_rs's yes/no for a request envelope (None without it), as for metadata: a
    valid body then never reaches pure-Python jsonschema, which was a twelfth of a publish's
    CPU in the web worker."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    envelope, _ = _request_schemas()
    return jsonschema_rs.Draft202012Validator({**envelope, "$ref": f"#/$defs/{kind}"},
                                              validate_formats=False)


def require_valid_request(kind: str, body: Any) -> None:
    errors = unstorable_text_errors(body) or (
        [] if _surely_valid(_fast_request_check(kind), body)
        else collect_errors(request_validator(kind), body))
    if errors:
        raise validation_failed(errors)
