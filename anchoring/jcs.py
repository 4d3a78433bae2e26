"""RFC 8785 JSON Canonicalization Scheme on the standard library alone.

The auditor recomputes ``metadata_sha256`` from the metadata it was given, so it cannot depend
on a third-party canonicaliser; the tests cross-check this one against the ``rfc8785`` package.
"""

from __future__ import annotations

import math
from json.encoder import encode_basestring as _encode_string
from typing import Any

# Beyond 2**53 an integer is not exactly representable as an IEEE 754 double, so two JSON
# implementations may disagree on it; RFC 8785 (I-JSON) forbids it rather than guess.
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalizationError(ValueError):
    """The value cannot be represented in I-JSON (RFC 7493) and so has no canonical form."""


def canonicalize(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON value (dict, list, str, int, float, bool, None)."""
    parts: list[str] = []
    _write(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationError("string contains a lone surrogate") from None


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalizationError(f"integer {value} is outside the I-JSON range")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(ecmascript_number(value))
    elif isinstance(value, dict):
        out.append("{")
        keys = list(value)
        if any(not isinstance(k, str) for k in keys):
            raise CanonicalizationError("object keys must be strings")
        # RFC 8785 §3.2.3: sort by UTF-16 code units; big-endian UTF-16 bytes sort the same.
        keys.sort(key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise CanonicalizationError(f"{type(value).__name__} is not a JSON type")


def _string(text: str) -> str:
    """RFC 8785 §3.2.2.2: exactly what the standard library's JSON string encoder does without
    ensure_ascii (\\b \\t \\n \\f \\r \\" \\\\, other controls as lower-case \\u00xx, the rest
    verbatim), so its C implementation is used; a lone surrogate fails at encode time."""
    return _encode_string(text)


def ecmascript_number(x: float) -> str:
    """Number serialisation of ECMAScript's Number.prototype.toString (ECMA-262 §6.1.6.1.20).

    Python's repr already yields the shortest round-tripping digits; only the layout (where the
    decimal point goes, when to switch to exponent form) differs and is redone here.
    """
    if math.isnan(x) or math.isinf(x):
        raise CanonicalizationError("NaN and Infinity are not JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # value = 0.<digits before stripping> ... compute n: position of the decimal point
    # relative to the first significant digit, as ECMAScript defines (value = s * 10**(n-k)).
    leading_zeros = len(whole + fraction) - len((whole + fraction).lstrip("0"))
    n = len(whole) - leading_zeros + (int(exponent) if exponent else 0)
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
        body = digits + exp if k == 1 else digits[0] + "." + digits[1:] + exp
    return sign + body
