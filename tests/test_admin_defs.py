"""The UserTaskDef admin (DESIGN §2, §8, issue 5): saving a changed definition creates a new
version through put_user_task_def; identical saves create nothing; versions are never edited in
place or deleted."""

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import INFO, SUCCESS, get_messages
from django.urls import reverse

from tests.conftest import IT_REQUEST_FIELDS
from usertasks import services
from usertasks.actors import SYSTEM
from usertasks.models import UserTaskDef, UserTaskField

pytestmark = pytest.mark.django_db

ADD = reverse("admin:usertasks_usertaskdef_add")
CHANGELIST = reverse("admin:usertasks_usertaskdef_changelist")
FIELD_KEYS = ("name", "display_name", "type", "required", "description")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def change_url(udef):
    return reverse("admin:usertasks_usertaskdef_change", args=[udef.pk])


def form_data(udef=None, *, fields, delete=(), **top):
    """The POST of the def form: `fields` are the rows in order (existing ones first, by name)."""
    existing = {f.name: f for f in udef.fields.all()} if udef else {}
    data = {
        "description": udef.description if udef else "",
        "default_actions": "[]",
        "fields-TOTAL_FORMS": str(len(fields)),
        "fields-INITIAL_FORMS": str(len(existing)),
        "fields-MIN_NUM_FORMS": "0",
        "fields-MAX_NUM_FORMS": "1000",
        **top,
    }
    for i, row in enumerate(fields):
        prefix = f"fields-{i}-"
        original = existing.get(row.get("original", row["name"]))
        if original is not None and i < len(existing):
            data[prefix + "id"] = str(original.pk)
            data[prefix + "user_task_def"] = str(udef.pk)
        data[prefix + "position"] = str(row.get("position", i))
        data[prefix + "name"] = row["name"]
        data[prefix + "display_name"] = row.get("display_name", "")
        data[prefix + "description"] = row.get("description", "")
        data[prefix + "type"] = row["type"]
        if row.get("required"):
            data[prefix + "required"] = "on"
        if row["name"] in delete:
            data[prefix + "DELETE"] = "on"
    return data


def rows(udef):
    return [{k: getattr(f, k) for k in FIELD_KEYS} for f in udef.fields.all()]


def reported(response):
    return [(m.level, m.message) for m in get_messages(response.wsgi_request)]


def test_adding_a_def_creates_version_0_through_the_service(admin_client):
    response = admin_client.post(
        ADD,
        form_data(
            name="it-request",
            description="Ask for equipment.",
            fields=[
                {"name": "requestedItem", "display_name": "Requested item", "type": "STR", "required": True},
                {"name": "justification", "type": "STR"},
            ],
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    udef = UserTaskDef.objects.get(name="it-request")
    assert (udef.version, udef.description) == (0, "Ask for equipment.")
    assert [(f["name"], f["type"], f["required"]) for f in rows(udef)] == [
        ("requestedItem", "STR", True),
        ("justification", "STR", False),
    ]
    assert [f.position for f in udef.fields.all()] == [0, 1]
    assert reported(response) == [
        (SUCCESS, "Saved it-request as version 0. Runs already started keep the version they were created with.")
    ]


def test_changing_a_def_creates_the_next_version_and_leaves_the_old_one_and_its_runs_alone(admin_client, it_request, start_run):
    run = start_run(user_group="jedi-council")
    old_rows = rows(it_request)
    fields = [dict(f) for f in old_rows] + [{"name": "quantity", "display_name": "Quantity", "type": "INT"}]
    fields[0]["display_name"] = "What do you need?"

    response = admin_client.post(change_url(it_request), form_data(it_request, fields=fields, _continue="1"))

    assert response.status_code == 302
    new = UserTaskDef.objects.get(name="it-request", version=1)
    assert response.url == change_url(new)
    assert [f["name"] for f in rows(new)] == ["requestedItem", "justification", "quantity"]
    assert rows(new)[0]["display_name"] == "What do you need?"
    it_request.refresh_from_db()
    assert rows(it_request) == old_rows  # never edited in place
    run.refresh_from_db()
    assert run.user_task_def_id == it_request.pk
    assert UserTaskField.objects.filter(user_task_def=it_request).count() == 2
    assert reported(response)[0][0] == SUCCESS and "version 1" in reported(response)[0][1]


def test_saving_an_identical_def_creates_no_version(admin_client, it_request):
    response = admin_client.post(change_url(it_request), form_data(it_request, fields=rows(it_request)))
    assert response.status_code == 302
    assert list(UserTaskDef.objects.filter(name="it-request").values_list("version", flat=True)) == [0]
    assert reported(response) == [(INFO, "Nothing changed: it-request@0 is identical, so no new version was created.")]


def test_a_changed_description_alone_is_a_new_version(admin_client, it_request):
    admin_client.post(change_url(it_request), form_data(it_request, fields=rows(it_request), description="New text"))
    assert UserTaskDef.objects.get(name="it-request", version=1).description == "New text"


def test_a_field_marked_delete_is_left_out_of_the_new_version(admin_client, it_request):
    response = admin_client.post(
        change_url(it_request), form_data(it_request, fields=rows(it_request), delete=["justification"])
    )
    assert response.status_code == 302
    assert [f["name"] for f in rows(UserTaskDef.objects.get(name="it-request", version=1))] == ["requestedItem"]
    assert [f["name"] for f in rows(it_request)] == ["requestedItem", "justification"]


def test_the_order_column_reorders_the_fields(admin_client, it_request):
    fields = rows(it_request)
    fields[0]["position"], fields[1]["position"] = 5, 1
    admin_client.post(change_url(it_request), form_data(it_request, fields=fields))
    assert [f["name"] for f in rows(UserTaskDef.objects.get(name="it-request", version=1))] == [
        "justification",
        "requestedItem",
    ]


def test_adding_a_def_under_an_existing_name_creates_its_next_version(admin_client, it_request):
    admin_client.post(ADD, form_data(name="it-request", fields=[{"name": "only", "type": "BOOL"}]))
    assert [f["name"] for f in rows(UserTaskDef.objects.get(name="it-request", version=1))] == ["only"]


def test_a_def_without_fields_is_allowed(admin_client):
    response = admin_client.post(ADD, form_data(name="acknowledge", fields=[]))
    assert response.status_code == 302
    assert UserTaskDef.objects.get(name="acknowledge").fields.count() == 0


@pytest.mark.parametrize(
    "top, fields, message",
    [
        ({"name": "Not A Name"}, [], "name must be lowercase letters, digits and hyphens"),
        ({"name": "ok"}, [{"name": "1bad", "type": "STR"}], "fields[0].name must be an identifier"),
        ({"name": "ok"}, [{"name": "a", "type": "STR"}, {"name": "a", "type": "INT"}], "field &#x27;a&#x27; appears more than once"),
        ({"name": "ok", "default_actions": '[{"type": "EXPLODE", "delay_seconds": 1}]'}, [], "actions[0].type must be one of"),
        ({"name": "ok", "default_actions": "not json"}, [], "Enter a valid JSON."),
    ],
)
def test_invalid_definitions_are_form_errors_and_create_nothing(admin_client, top, fields, message):
    response = admin_client.post(ADD, form_data(fields=fields, **top))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not UserTaskDef.objects.exists()


def test_an_unknown_field_type_is_refused(admin_client):
    response = admin_client.post(ADD, form_data(name="ok", fields=[{"name": "a", "type": "DATE"}]))
    assert response.status_code == 200
    assert not UserTaskDef.objects.exists()


def test_defs_are_never_deleted(admin_client, it_request, start_run):
    assert admin_client.get(reverse("admin:usertasks_usertaskdef_delete", args=[it_request.pk])).status_code == 403
    assert admin_client.post(reverse("admin:usertasks_usertaskdef_delete", args=[it_request.pk]), {"post": "yes"}).status_code == 403
    assert admin_client.get(CHANGELIST).context["action_form"] is None  # no delete_selected, no actions at all
    assert UserTaskDef.objects.filter(pk=it_request.pk).exists()


def test_the_change_page_shows_the_version_and_its_run_count(admin_client, it_request, start_run):
    start_run(user_group="jedi-council")
    page = admin_client.get(change_url(it_request)).content.decode()
    assert "Saving creates a new version" in page
    assert "Runs of this version" in page
    assert 'name="name"' not in page  # the name of an existing def is fixed


def test_a_staff_user_without_the_def_permission_cannot_change_defs(client, it_request):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_usertaskdef"))
    client.force_login(user)
    assert client.get(change_url(it_request)).status_code == 200
    assert client.get(ADD).status_code == 403
    assert client.post(change_url(it_request), form_data(it_request, fields=rows(it_request), description="x")).status_code == 403
    assert UserTaskDef.objects.count() == 1


def test_a_staff_user_with_the_def_permission_saves_versions_as_themselves(client, it_request):
    user = User.objects.create_user("designer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="add_usertaskdef"))
    client.force_login(user)
    response = client.post(change_url(it_request), form_data(it_request, fields=rows(it_request), description="x"))
    assert response.status_code == 302
    assert UserTaskDef.objects.filter(name="it-request", version=1).exists()


def test_definition_text_is_escaped(admin_client):
    admin_client.post(
        ADD,
        form_data(
            name="xss",
            description="<script>alert('d')</script>",
            fields=[{"name": "a", "display_name": "<img src=x onerror=alert(1)>", "type": "STR",
                     "description": "<script>alert('f')</script>"}],
        ),
    )  # fmt: skip
    udef = UserTaskDef.objects.get(name="xss")
    for url in (CHANGELIST, change_url(udef)):
        page = admin_client.get(url).content.decode()
        assert "<script>alert(" not in page
        assert "<img src=x" not in page


def test_the_changelist_lists_versions_with_their_field_counts(admin_client, it_request):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert "it-request" in response.content.decode()
    assert [r.field_count for r in response.context["cl"].result_list] == [len(IT_REQUEST_FIELDS)]


def test_a_def_with_default_actions_saved_unchanged_creates_no_version(admin_client):
    actions = [{"type": "REMINDER", "hook": "ON_TASK_ASSIGNED", "delay_seconds": 3600}]
    udef, _ = services.put_user_task_def(name="nudged", fields=IT_REQUEST_FIELDS, default_actions=actions, actor=SYSTEM)
    shown = admin_client.get(change_url(udef)).context["adminform"].form["default_actions"].value()
    response = admin_client.post(change_url(udef), form_data(udef, fields=rows(udef), default_actions=shown))
    assert reported(response)[0][0] == INFO
    assert UserTaskDef.objects.filter(name="nudged").count() == 1

    changed = shown.replace("3600", "7200")
    admin_client.post(change_url(udef), form_data(udef, fields=rows(udef), default_actions=changed))
    assert UserTaskDef.objects.get(name="nudged", version=1).default_actions == [{**actions[0], "delay_seconds": 7200}]
