"""Small field checkers shared by the spec and the events: each names the field it rejects."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from .errors import ProtocolError

_MISSING = object()

#: No field needs a longer number; a longer one would also take Python 3.8 (no limit on
#: int() of a long digit string) seconds to minutes to parse.
MAX_NUMBER_DIGITS = 64


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError("a number of %d digits (at most %d)" % (len(text), MAX_NUMBER_DIGITS))
    return int(text)


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError("%s does not fit a float" % text[:40])
    return number


def _no_constant(name: str) -> Any:
    raise ValueError("%s is not a JSON number" % name)


def loads(text: str, what: str, snippet: bool = False) -> Any:
    """json.loads for a protocol line, bounded: no NaN/Infinity (nor a float too big to be
    finite), no integer longer than MAX_NUMBER_DIGITS digits, no nesting deeper than
    Python's recursion limit. Anything else is a ProtocolError naming `what` (with the
    start of the line when `snippet`)."""
    try:
        return json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        tail = ": %r" % (text[:120],) if snippet else ""
        raise ProtocolError("%s: not valid JSON (%s)%s" % (what, reason, tail)) from exc


def get(data: Dict[str, Any], key: str, where: str, default: Any = _MISSING) -> Any:
    if key in data:
        return data[key]
    if default is _MISSING:
        raise ProtocolError("%s.%s: missing (required field)" % (where, key))
    return default


def as_obj(value: Any, field: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError("%s: expected an object, got %s" % (field, _kind(value)))
    return value


def as_opt_obj(value: Any, field: str) -> Optional[Dict[str, Any]]:
    return None if value is None else as_obj(value, field)


def as_str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError("%s: expected a string, got %s" % (field, _kind(value)))
    return value


def as_opt_str(value: Any, field: str) -> Optional[str]:
    return None if value is None else as_str(value, field)


def as_nonempty_str(value: Any, field: str) -> str:
    text = as_str(value, field)
    if not text:
        raise ProtocolError("%s: must not be empty" % field)
    return text


def as_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError("%s: expected true or false, got %s" % (field, _kind(value)))
    return value


def as_int(value: Any, field: str, minimum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("%s: expected an integer, got %s" % (field, _kind(value)))
    if minimum is not None and value < minimum:
        raise ProtocolError("%s: must be >= %d, got %d" % (field, minimum, value))
    return value


def as_opt_int(value: Any, field: str) -> Optional[int]:
    return None if value is None else as_int(value, field)


def as_float(value: Any, field: str, minimum: Optional[float] = None, maximum: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError("%s: expected a number, got %s" % (field, _kind(value)))
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ProtocolError("%s: must be a finite number, got %r" % (field, number))
    if minimum is not None and number < minimum:
        raise ProtocolError("%s: must be >= %g, got %g" % (field, minimum, number))
    if maximum is not None and number > maximum:
        raise ProtocolError("%s: must be <= %g, got %g" % (field, maximum, number))
    return number


def as_opt_float(value: Any, field: str) -> Optional[float]:
    return None if value is None else as_float(value, field)


def as_list(value: Any, field: str) -> List[Any]:
    if not isinstance(value, list):
        raise ProtocolError("%s: expected a list, got %s" % (field, _kind(value)))
    return value


def as_choice(value: Any, field: str, choices) -> str:
    text = as_str(value, field)
    if text not in choices:
        raise ProtocolError("%s: %r is not one of %s" % (field, text, ", ".join(repr(c) for c in choices)))
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean (%s)" % ("true" if value else "false")
    if isinstance(value, (int, float)):
        return "a number (%r)" % (value,)
    if isinstance(value, str):
        return "a string (%r)" % (value[:40],)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
