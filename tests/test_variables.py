"""validate_results, the one place that checks results against a definition (DESIGN §3 "complete":
no casting; INT takes JSON integers only; DOUBLE accepts integers; BOOL only true/false; null
counts as absent; every offending field is listed)."""

import json
import math
from types import SimpleNamespace

import pytest

from usertasks.exceptions import InvalidArgument
from usertasks.variables import TYPES, validate_results


def field(name, type, required=False):
    return SimpleNamespace(name=name, type=type, required=required)


FIELDS = [
    field("item", "STR", required=True),
    field("count", "INT"),
    field("price", "DOUBLE"),
    field("urgent", "BOOL"),
]


def check(results, *, fields=FIELDS, require_all=True):
    return validate_results(fields, results, require_all=require_all)


def test_the_type_table_has_exactly_the_four_types():
    assert list(TYPES) == ["STR", "INT", "DOUBLE", "BOOL"]


@pytest.mark.parametrize(
    "name, value",
    [
        ("item", "comlink"),
        ("item", ""),
        ("count", 0),
        ("count", -7),
        ("count", 2**63 - 1),
        ("count", -(2**63)),
        ("price", 1.5),
        ("price", 2),
        ("price", 0),
        ("price", -0.25),
        ("urgent", True),
        ("urgent", False),
    ],
)
def test_values_of_the_right_json_type_are_accepted(name, value):
    results = {"item": "x", name: value} if name != "item" else {"item": value}

    if name == "item" and value == "":
        assert check(results, require_all=False) == {"item": ""}
    else:
        assert check(results)[name] == value


@pytest.mark.parametrize(
    "name, value",
    [
        ("item", 5),
        ("item", True),
        ("item", ["a"]),
        ("item", {"a": 1}),
        ("count", 1.5),
        ("count", 2.0),
        ("count", True),
        ("count", False),
        ("count", "3"),
        ("count", 2**63),
        ("count", -(2**63) - 1),
        ("price", "1.5"),
        ("price", True),
        ("price", float("nan")),
        ("price", float("inf")),
        ("price", [1]),
        ("urgent", 1),
        ("urgent", 0),
        ("urgent", "true"),
        ("urgent", "false"),
        ("urgent", 1.0),
    ],
)
def test_values_of_another_json_type_are_rejected_without_casting(name, value):
    results = {"item": "x", name: value}

    with pytest.raises(InvalidArgument) as excinfo:
        check(results, require_all=False)

    assert excinfo.value.code == "INVALID_ARGUMENT"
    assert set(excinfo.value.field_errors) == {name}
    assert f"{name} must be" in excinfo.value.message


@pytest.mark.parametrize(
    "value, described",
    [(1.5, "a number with a fraction"), (2.0, "the decimal number 2.0"), (True, "true"), ("3", "a string")],
)
def test_an_int_error_says_what_it_got(value, described):
    with pytest.raises(InvalidArgument, match=f"count must be an integer \\(INT\\), got {described}"):
        check({"item": "x", "count": value})


def test_double_values_are_stored_as_floats():
    clean = check({"item": "x", "price": 3})

    assert clean["price"] == 3.0 and isinstance(clean["price"], float)
    assert json.dumps(clean["price"]) == "3.0"


def test_int_values_stay_ints():
    clean = check({"item": "x", "count": 3})

    assert clean["count"] == 3 and type(clean["count"]) is int


def test_values_parsed_from_json_follow_the_same_rules():
    results = json.loads('{"item": "x", "count": 2.0}')

    with pytest.raises(InvalidArgument, match="count must be an integer"):
        check(results)
    assert check(json.loads('{"item": "x", "count": 2, "price": 2}')) == {"item": "x", "count": 2, "price": 2.0}


# --- null, required and unknown fields ----------------------------------------------------------


def test_null_counts_as_absent_and_is_dropped():
    assert check({"item": "x", "count": None, "price": None, "urgent": None}) == {"item": "x"}


def test_a_null_required_field_is_missing():
    with pytest.raises(InvalidArgument, match="item is required") as excinfo:
        check({"item": None})

    assert excinfo.value.field_errors == {"item": "is required"}


def test_a_missing_required_field_is_reported_when_completing():
    with pytest.raises(InvalidArgument, match="item is required"):
        check({"count": 1})


def test_required_fields_are_not_enforced_when_saving():
    assert check({"count": 1}, require_all=False) == {"count": 1}
    assert check({}, require_all=False) == {}


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_a_blank_required_string_counts_as_missing_when_completing(value):
    with pytest.raises(InvalidArgument, match="item is required"):
        check({"item": value})


def test_a_required_bool_answered_false_is_present():
    fields = [field("approved", "BOOL", required=True), field("amount", "DOUBLE", required=True)]

    assert check({"approved": False, "amount": 0}, fields=fields) == {"approved": False, "amount": 0.0}


def test_an_unknown_field_is_rejected_when_completing_and_saving():
    for require_all in (True, False):
        with pytest.raises(InvalidArgument, match="colour is not a field of this UserTaskDef") as excinfo:
            check({"item": "x", "colour": "red"}, require_all=require_all)
        assert set(excinfo.value.field_errors) == {"colour"}


def test_an_unknown_field_is_rejected_even_when_null():
    """null counts as absent for the def's own fields; an unknown key is still a typo to report."""
    with pytest.raises(InvalidArgument, match="colour is not a field"):
        check({"item": "x", "colour": None})


def test_a_def_without_fields_accepts_only_an_empty_object():
    assert check({}, fields=[]) == {}
    with pytest.raises(InvalidArgument):
        check({"anything": 1}, fields=[])


# --- reporting ----------------------------------------------------------------------------------


def test_every_offending_field_is_listed_in_the_message_and_field_errors():
    results = {"item": 5, "count": 1.5, "price": "cheap", "urgent": "yes", "colour": "red"}

    with pytest.raises(InvalidArgument) as excinfo:
        check(results)

    errors = excinfo.value.field_errors
    assert set(errors) == {"item", "count", "price", "urgent", "colour"}
    assert errors["item"].startswith("must be a string")
    assert errors["count"].startswith("must be an integer")
    assert errors["price"].startswith("must be a number")
    assert errors["urgent"].startswith("must be true or false")
    assert errors["colour"] == "is not a field of this UserTaskDef"
    message = excinfo.value.message
    assert message.startswith("Invalid results: ")
    for name in errors:
        assert f"{name} " in message


def test_a_wrongly_typed_required_field_reports_its_type_not_missing():
    with pytest.raises(InvalidArgument) as excinfo:
        check({"item": 5})

    assert excinfo.value.field_errors == {"item": "must be a string (STR), got an integer"}


def test_type_errors_and_missing_required_fields_are_reported_together():
    with pytest.raises(InvalidArgument) as excinfo:
        check({"count": "one"})

    assert excinfo.value.field_errors == {
        "count": "must be an integer (INT), got a string",
        "item": "is required",
    }


@pytest.mark.parametrize("results", [None, [], "item=x", 1, [("item", "x")]])
def test_results_must_be_an_object(results):
    with pytest.raises(InvalidArgument, match="results must be a JSON object"):
        check(results)


def test_the_input_is_not_modified():
    results = {"item": "x", "count": None, "price": 2}

    check(results)

    assert results == {"item": "x", "count": None, "price": 2}


def test_nan_is_not_stored():
    with pytest.raises(InvalidArgument):
        check({"item": "x", "price": math.nan})
