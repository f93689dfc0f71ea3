"""POST /api/v1/user-task-defs, GET /user-task-defs/{name} and /{name}/{version}."""

from tests.conftest import IT_REQUEST_FIELDS
from tests.test_api_support import api, api_users, assert_error, everything, tokens  # noqa: F401

from usertasks.models import UserTaskDef

IT_REQUEST = {"name": "it-request", "description": "Ask the quartermaster.", "fields": IT_REQUEST_FIELDS}


def test_put_def_creates_version_0_with_201(api):
    response = api.post("/user-task-defs", IT_REQUEST)
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "it-request" and body["version"] == 0
    assert body["description"] == "Ask the quartermaster."
    assert body["created_at"]
    assert body["fields"] == [
        {"name": "requestedItem", "display_name": "Requested item", "description": "", "type": "STR", "required": True},
        {"name": "justification", "display_name": "Justification", "description": "", "type": "STR", "required": False},
    ]


def test_put_identical_def_returns_existing_version_with_200(api):
    first = api.post("/user-task-defs", IT_REQUEST).json()
    response = api.post("/user-task-defs", IT_REQUEST)
    assert response.status_code == 200
    assert response.json() == first
    assert UserTaskDef.objects.count() == 1


def test_put_changed_def_creates_next_version(api):
    api.post("/user-task-defs", IT_REQUEST)
    changed = {**IT_REQUEST, "fields": [*IT_REQUEST_FIELDS, {"name": "urgent", "type": "BOOL"}]}
    response = api.post("/user-task-defs", changed)
    assert response.status_code == 201
    assert response.json()["version"] == 1
    assert [f["name"] for f in response.json()["fields"]] == ["requestedItem", "justification", "urgent"]


def test_put_def_with_zero_fields_is_an_acknowledge_only_task(api):
    response = api.post("/user-task-defs", {"name": "acknowledge", "fields": []})
    assert response.status_code == 201
    assert response.json()["fields"] == []


def test_put_def_with_default_actions(api):
    body = {**IT_REQUEST, "default_actions": [{"type": "REMINDER", "delay_seconds": 60}]}
    response = api.post("/user-task-defs", body)
    assert response.status_code == 201
    assert response.json()["default_actions"] == [
        {"type": "REMINDER", "hook": "ON_ARRIVAL", "delay_seconds": 60, "user_id": None, "user_group": None}
    ]


def test_put_def_with_bad_name_is_invalid_argument(api):
    before = everything()
    message = assert_error(api.post("/user-task-defs", {**IT_REQUEST, "name": "IT Request"}), 400, "INVALID_ARGUMENT")
    assert "name" in message
    assert everything() == before


def test_put_def_with_unknown_field_type_is_invalid_argument(api):
    before = everything()
    body = {"name": "x", "fields": [{"name": "a", "type": "DATE"}]}
    message = assert_error(api.post("/user-task-defs", body), 400, "INVALID_ARGUMENT")
    assert "fields[0].type" in message
    assert everything() == before


def test_put_def_with_duplicate_field_is_invalid_argument(api):
    before = everything()
    body = {"name": "x", "fields": [{"name": "a", "type": "STR"}, {"name": "a", "type": "INT"}]}
    message = assert_error(api.post("/user-task-defs", body), 400, "INVALID_ARGUMENT")
    assert "more than once" in message
    assert everything() == before


def test_put_def_with_unknown_key_in_field_is_invalid_argument(api):
    before = everything()
    body = {"name": "x", "fields": [{"name": "a", "type": "STR", "label": "A"}]}
    message = assert_error(api.post("/user-task-defs", body), 400, "INVALID_ARGUMENT")
    assert "fields[0].label" in message and "unknown key" in message
    assert everything() == before


def test_put_def_with_string_for_required_is_invalid_argument_not_coerced(api):
    body = {"name": "x", "fields": [{"name": "a", "type": "STR", "required": "yes"}]}
    assert_error(api.post("/user-task-defs", body), 400, "INVALID_ARGUMENT")
    assert not UserTaskDef.objects.exists()


def test_put_def_without_fields_key_is_invalid_argument(api):
    message = assert_error(api.post("/user-task-defs", {"name": "x"}), 400, "INVALID_ARGUMENT")
    assert "fields: is required" in message
    assert not UserTaskDef.objects.exists()


def test_plain_user_may_not_put_def(api):
    message = assert_error(api.post("/user-task-defs", IT_REQUEST, as_="obiwan"), 403, "PERMISSION_DENIED")
    assert "obiwan" in message
    assert not UserTaskDef.objects.exists()


def test_get_latest_def(api):
    api.post("/user-task-defs", IT_REQUEST)
    api.post("/user-task-defs", {**IT_REQUEST, "description": "v1"})
    response = api.get("/user-task-defs/it-request", as_="obiwan")
    assert response.status_code == 200
    assert response.json()["version"] == 1 and response.json()["description"] == "v1"


def test_get_exact_def_version(api):
    api.post("/user-task-defs", IT_REQUEST)
    api.post("/user-task-defs", {**IT_REQUEST, "description": "v1"})
    response = api.get("/user-task-defs/it-request/0", as_="obiwan")
    assert response.status_code == 200
    assert response.json()["version"] == 0 and response.json()["description"] == "Ask the quartermaster."


def test_get_unknown_def_is_not_found(api):
    assert_error(api.get("/user-task-defs/nope"), 404, "NOT_FOUND")


def test_get_unknown_def_version_is_not_found(api):
    api.post("/user-task-defs", IT_REQUEST)
    message = assert_error(api.get("/user-task-defs/it-request/7"), 404, "NOT_FOUND")
    assert "version 7" in message


def test_get_def_version_that_is_not_a_number_is_invalid_argument(api):
    assert_error(api.get("/user-task-defs/it-request/latest"), 400, "INVALID_ARGUMENT")


def test_get_def_version_out_of_range_is_invalid_argument(api):
    assert_error(api.get("/user-task-defs/it-request/99999999999999999999999"), 400, "INVALID_ARGUMENT")
