"""The four UserTaskField types in one table: JSON check (no casting), conversion, form field.

A new type is one row here, not edits in five files.
"""

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable

from django import forms

from .exceptions import InvalidArgument

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    # bool is a subclass of int in Python; JSON true is not an integer.
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


def _is_double(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _bool_form_field(field, **kwargs) -> forms.Field:
    if field.required:
        # A required BOOL must be answered: a checkbox cannot tell "No" from "not answered".
        return forms.TypedChoiceField(
            choices=[("", "---------"), ("true", "Yes"), ("false", "No")],
            coerce=lambda v: v == "true",
            empty_value=None,
            **kwargs,
        )
    return forms.NullBooleanField(widget=forms.CheckboxInput, **kwargs)


def _str_form_field(field, **kwargs) -> forms.Field:
    long_text = any(word in (field.description or "").lower() for word in ("long", "explain", "paragraph"))
    widget = forms.Textarea(attrs={"rows": 4}) if long_text else None
    return forms.CharField(widget=widget, strip=True, **kwargs)


@dataclass(frozen=True)
class VariableType:
    name: str
    expected: str  # how the error message names the expected JSON value
    check: Callable[[Any], bool]
    convert: Callable[[Any], Any]  # checked JSON value -> stored JSON value
    form_field: Callable[..., forms.Field]
    from_form: Callable[[Any], Any]  # cleaned form value -> JSON value


TYPES: dict[str, VariableType] = {
    "STR": VariableType("STR", "a string", _is_str, str, _str_form_field, lambda v: v or None),
    "INT": VariableType(
        "INT",
        "an integer",
        _is_int,
        int,
        lambda field, **kw: forms.IntegerField(min_value=INT64_MIN, max_value=INT64_MAX, **kw),
        lambda v: v,
    ),
    "DOUBLE": VariableType(
        "DOUBLE",
        "a number",
        _is_double,
        float,
        lambda field, **kw: forms.DecimalField(**kw),
        lambda v: float(v) if isinstance(v, Decimal) else v,
    ),
    "BOOL": VariableType("BOOL", "true or false", _is_bool, bool, _bool_form_field, lambda v: v),
}

TYPE_CHOICES = [(name, name) for name in TYPES]


def validate_results(fields: Iterable, results: Any, *, require_all: bool) -> dict:
    """Check `results` against a definition's fields and return the value to store.

    No casting: a value must already be of its field's JSON type; `null` counts as absent and
    is dropped. `require_all` enforces required fields (complete) or not (save progress).
    Raises InvalidArgument naming every offending field, with `field_errors` filled in.
    """
    if not isinstance(results, dict):
        raise InvalidArgument("results must be a JSON object mapping field names to values")
    by_name = {field.name: field for field in fields}
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in results.items():
        field = by_name.get(key)
        if field is None:
            errors[str(key)] = "is not a field of this UserTaskDef"
            continue
        if value is None:
            continue
        vtype = TYPES[field.type]
        if not vtype.check(value):
            errors[key] = f"must be {vtype.expected} ({field.type}), got {_describe(value)}"
            continue
        clean[key] = vtype.convert(value)
    if require_all:
        for field in by_name.values():
            if not field.required or field.name in errors:
                continue
            value = clean.get(field.name)
            if value is None or (field.type == "STR" and not value.strip()):
                errors[field.name] = "is required"
    if errors:
        listed = "; ".join(f"{name} {problem}" for name, problem in errors.items())
        raise InvalidArgument(f"Invalid results: {listed}", field_errors=errors)
    return clean


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer out of range" if not _is_int(value) else "an integer"
    if isinstance(value, float):
        return "a number with a fraction" if not value.is_integer() else f"the decimal number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
