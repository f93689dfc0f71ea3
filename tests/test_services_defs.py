"""put_user_task_def (DESIGN §2, §3 "put def"): versions from 0, identical → same version,
any change → version + 1, runs pin their version, malformed input and permission."""

import pytest

from usertasks import services
from usertasks.actors import SYSTEM, Actor
from usertasks.exceptions import InvalidArgument, PermissionDenied
from usertasks.models import UserTaskDef, UserTaskField

pytestmark = pytest.mark.django_db

FIELDS = [
    {
        "name": "requestedItem",
        "display_name": "Requested item",
        "description": "What you need",
        "type": "STR",
        "required": True,
    },
    {"name": "quantity", "display_name": "Quantity", "description": "", "type": "INT", "required": False},
]


def put(*, name="it-request", fields=None, actor=SYSTEM, **kwargs):
    return services.put_user_task_def(name=name, fields=FIELDS if fields is None else fields, actor=actor, **kwargs)


def field_rows(udef):
    return [(f.name, f.display_name, f.description, f.type, f.required) for f in udef.fields.order_by("position")]


def versions(name="it-request"):
    return list(UserTaskDef.objects.filter(name=name).order_by("version").values_list("version", flat=True))


def changed_field(index, **changes):
    fields = [dict(f) for f in FIELDS]
    fields[index].update(changes)
    return fields


# --- versions -----------------------------------------------------------------------------------


def test_first_put_creates_version_0_with_its_fields_in_order():
    udef, created = put(description="Ask IT for something")

    assert created is True
    assert (udef.name, udef.version, udef.description) == ("it-request", 0, "Ask IT for something")
    assert field_rows(udef) == [
        ("requestedItem", "Requested item", "What you need", "STR", True),
        ("quantity", "Quantity", "", "INT", False),
    ]


def test_putting_an_identical_definition_returns_the_same_version_not_created():
    first, _ = put(description="Ask IT")

    again, created = put(description="Ask IT")

    assert created is False
    assert again.pk == first.pk and again.version == 0
    assert versions() == [0]


def test_omitted_optional_field_attributes_are_identical_to_their_defaults():
    put(fields=[{"name": "note", "display_name": "", "description": "", "type": "STR", "required": False}])

    again, created = put(fields=[{"name": "note", "type": "STR"}])

    assert created is False and again.version == 0


def test_omitted_description_is_identical_to_an_empty_one():
    put(description="")

    _, created = put()

    assert created is False


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"description": "A different description"}, id="description"),
        pytest.param({"fields": changed_field(0, display_name="Item")}, id="field-display_name"),
        pytest.param({"fields": changed_field(0, description="Be precise")}, id="field-description"),
        pytest.param({"fields": changed_field(1, type="DOUBLE")}, id="field-type"),
        pytest.param({"fields": changed_field(1, required=True)}, id="field-required"),
        pytest.param({"fields": changed_field(1, name="amount")}, id="field-name"),
        pytest.param({"fields": list(reversed(FIELDS))}, id="field-order"),
        pytest.param({"fields": FIELDS[:1]}, id="field-removed"),
        pytest.param({"fields": [*FIELDS, {"name": "urgent", "type": "BOOL"}]}, id="field-added"),
        pytest.param({"fields": []}, id="all-fields-removed"),
    ],
)
def test_any_change_creates_the_next_version_and_leaves_the_old_one_intact(change):
    v0, _ = put(description="Ask IT")

    v1, created = put(**{"description": "Ask IT", **change})

    assert created is True
    assert v1.version == 1 and v1.pk != v0.pk
    assert versions() == [0, 1]
    v0.refresh_from_db()
    assert v0.description == "Ask IT"
    assert field_rows(v0) == [
        ("requestedItem", "Requested item", "What you need", "STR", True),
        ("quantity", "Quantity", "", "INT", False),
    ]


def test_identical_means_identical_to_the_latest_version_not_an_older_one():
    put(description="A")
    put(description="B")

    udef, created = put(description="A")

    assert created is True and udef.version == 2


def test_putting_the_latest_again_after_several_versions_is_a_no_op():
    put(description="A")
    put(description="B")

    udef, created = put(description="B")

    assert created is False and udef.version == 1
    assert versions() == [0, 1]


def test_versions_are_per_name():
    put(name="it-request")

    other, created = put(name="approve-funds", fields=[{"name": "amount", "type": "DOUBLE"}])

    assert created is True and other.version == 0


def test_runs_keep_the_version_they_were_started_with():
    put(description="A")
    old_run = services.start_user_task_run(user_task_def_name="it-request", user_group="jedi-council", actor=SYSTEM)

    put(description="B", fields=[{"name": "other", "type": "BOOL"}])
    new_run = services.start_user_task_run(user_task_def_name="it-request", user_group="jedi-council", actor=SYSTEM)

    old_run.refresh_from_db()
    assert old_run.user_task_def.version == 0
    assert [f.name for f in old_run.user_task_def.fields.all()] == ["requestedItem", "quantity"]
    assert new_run.user_task_def.version == 1


@pytest.mark.parametrize("fields", [[], None], ids=["empty-list", "absent"])
def test_a_def_with_zero_fields_is_allowed(fields):
    udef, created = services.put_user_task_def(name="acknowledge", fields=fields, actor=SYSTEM)

    assert created is True and udef.version == 0
    assert udef.fields.count() == 0


@pytest.mark.parametrize("field_name", ["a", "_private", "requestedItem", "snake_case_2", "x" * 128])
def test_identifier_field_names_are_accepted(field_name):
    udef, _ = put(fields=[{"name": field_name, "type": "STR"}])

    assert [f.name for f in udef.fields.all()] == [field_name]


# --- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", "IT-Request", "it_request", "it request", "-it", "it-", "it.request", "ä", "it-request\n", "a" * 129, None, 42],
)
def test_a_bad_def_name_is_invalid_and_creates_nothing(name):
    with pytest.raises(InvalidArgument, match="name must be lowercase letters, digits and hyphens") as excinfo:
        put(name=name)

    assert excinfo.value.code == "INVALID_ARGUMENT"
    assert UserTaskDef.objects.count() == 0


@pytest.mark.parametrize("name", ["a", "it-request", "x1", "1x", "a" * 128, "a-b-c-1"])
def test_hostname_like_def_names_are_accepted(name):
    udef, created = put(name=name)

    assert created and udef.name == name


@pytest.mark.parametrize(
    "fields, fragment",
    [
        pytest.param("requestedItem", "fields must be a list", id="fields-not-a-list"),
        pytest.param(["requestedItem"], r"fields\[0\] must be an object", id="field-not-an-object"),
        pytest.param([{"type": "STR"}], r"fields\[0\]\.name", id="field-name-missing"),
        pytest.param([{"name": "", "type": "STR"}], r"fields\[0\]\.name", id="field-name-blank"),
        pytest.param([{"name": "1st", "type": "STR"}], r"fields\[0\]\.name", id="field-name-starts-with-digit"),
        pytest.param([{"name": "has space", "type": "STR"}], r"fields\[0\]\.name", id="field-name-space"),
        pytest.param([{"name": "has-hyphen", "type": "STR"}], r"fields\[0\]\.name", id="field-name-hyphen"),
        pytest.param([{"name": "x" * 129, "type": "STR"}], r"fields\[0\]\.name", id="field-name-too-long"),
        pytest.param([{"name": "amount\n", "type": "STR"}], r"fields\[0\]\.name", id="field-name-trailing-newline"),
        pytest.param([{"name": 7, "type": "STR"}], r"fields\[0\]\.name", id="field-name-not-a-string"),
        pytest.param(
            [{"name": "a", "type": "FLOAT"}], r"fields\[0\]\.type must be one of STR, INT, DOUBLE, BOOL", id="type-unknown"
        ),
        pytest.param([{"name": "a", "type": "str"}], r"fields\[0\]\.type", id="type-lowercase"),
        pytest.param([{"name": "a"}], r"fields\[0\]\.type", id="type-missing"),
        pytest.param([{"name": "a", "type": "STR", "required": "yes"}], r"fields\[0\]\.required", id="required-not-bool"),
        pytest.param([{"name": "a", "type": "STR", "display_name": 5}], r"fields\[0\]\.display_name", id="display-name-not-str"),
        pytest.param(
            [{"name": "a", "type": "STR"}, {"name": "a", "type": "INT"}], "field 'a' appears more than once", id="duplicate"
        ),
        pytest.param(
            [{"name": "a", "type": "STR", "default": "x"}], r"fields\[0\] has unknown keys: default", id="unknown-key"
        ),
        pytest.param(
            [{"name": "ok", "type": "STR"}, {"name": "b", "type": "STR", "label": "x", "min": 1}],
            r"fields\[1\] has unknown keys: label, min",
            id="unknown-keys-second-field",
        ),
    ],
)
def test_a_bad_field_is_invalid_and_creates_nothing(fields, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        put(fields=fields)

    assert UserTaskDef.objects.count() == 0
    assert UserTaskField.objects.count() == 0


def test_a_bad_change_leaves_the_existing_versions_alone():
    put()

    with pytest.raises(InvalidArgument):
        put(fields=[*FIELDS, {"name": "requestedItem", "type": "INT"}])

    assert versions() == [0]


def test_description_must_be_a_string():
    with pytest.raises(InvalidArgument, match="description must be a string"):
        put(description=["not", "text"])


# --- permission ---------------------------------------------------------------------------------


def test_a_plain_user_may_not_put_a_def(obiwan):
    with pytest.raises(PermissionDenied, match="obiwan may not define user task types") as excinfo:
        put(actor=obiwan)

    assert excinfo.value.code == "PERMISSION_DENIED"
    assert UserTaskDef.objects.count() == 0


def test_a_malformed_def_is_invalid_even_for_a_plain_user(obiwan):
    with pytest.raises(InvalidArgument):
        put(name="Bad Name", actor=obiwan)


@pytest.mark.parametrize(
    "actor",
    [
        Actor(name="wf-engine", permissions=frozenset({"usertasks.act_for_others"})),
        Actor(name="designer", permissions=frozenset({"usertasks.add_usertaskdef"})),
        Actor(name="admin", is_superuser=True),
    ],
    ids=["act_for_others", "add_usertaskdef", "superuser"],
)
def test_service_accounts_designers_and_admins_may_put_a_def(actor):
    udef, created = put(actor=actor)

    assert created and udef.version == 0
