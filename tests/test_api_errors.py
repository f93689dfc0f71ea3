"""Every response under /api/ is JSON, and every error is {"code", "message"} with the status of
DESIGN §3: unknown paths, wrong methods, malformed or non-JSON bodies, schema violations (400,
never 422), unknown keys, strings no database can store, oversize bodies, unexpected crashes."""

import pytest

from tests.test_api_support import api, api_users, assert_error, everything, run_path, tokens  # noqa: F401
from usertasks import services


@pytest.fixture
def run(start_run):
    return start_run(user_id="obiwan", user_group="jedi-council")


# --- paths and methods --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/api/", "/api/v1/", "/api/v2/user-task-runs", "/api/v1/nope",
                                  "/api/v1/user-task-runs/a/b/c/d/e", "/api/v1/user-task-defs/", "/api/anything.html"])
def test_unknown_path_is_json_not_found(api, path, method):
    message = assert_error(api.call(method, path, {}), 404, "NOT_FOUND")
    assert path in message


def test_unknown_path_without_a_token_is_also_json(api):
    assert_error(api.get("/api/v1/nope", as_=None), 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/user-task-defs", "POST"),
    ("PUT", "/user-task-defs/it-request", "GET"),
    ("PATCH", "/user-task-runs", "GET, POST"),
    ("GET", "{run}/complete", "POST"),
    ("DELETE", "{run}", "GET"),
    ("POST", "{run}/comments/1", "DELETE, PUT"),
])
def test_wrong_method_is_json_method_not_allowed(api, run, method, path, allowed):
    before = everything()
    response = api.call(method, path.format(run=run_path(run)), {})
    message = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert method in message
    assert sorted(response["Allow"].split(", ")) == allowed.split(", ")
    assert everything() == before


# --- bodies -------------------------------------------------------------------------------------


def test_malformed_json_is_invalid_argument(api, run):
    before = everything()
    message = assert_error(api.post(run_path(run, "/complete"), raw='{"user_id": "obiwan", '), 400, "INVALID_ARGUMENT")
    assert "not valid JSON" in message
    assert everything() == before


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"])
def test_wrong_content_type_is_invalid_argument(api, run, content_type):
    before = everything()
    raw = '{"user_id": "obiwan", "results": {"requestedItem": "lightsaber"}}'
    message = assert_error(api.post(run_path(run, "/complete"), raw=raw, content_type=content_type),
                           400, "INVALID_ARGUMENT")
    assert "application/json" in message
    assert everything() == before


def test_json_with_charset_is_accepted(api, run):
    raw = '{"user_id": "obiwan", "results": {"requestedItem": "lightsaber"}}'
    response = api.post(run_path(run, "/complete"), raw=raw, content_type="application/json; charset=utf-8")
    assert response.status_code == 200


@pytest.mark.parametrize("raw", ["[]", '"complete"', "42", "null"])
def test_body_that_is_not_an_object_is_invalid_argument(api, run, raw):
    before = everything()
    message = assert_error(api.post(run_path(run, "/complete"), raw=raw), 400, "INVALID_ARGUMENT")
    assert "JSON object" in message
    assert everything() == before


def test_missing_body_is_invalid_argument(api, run):
    before = everything()
    assert "JSON object" in assert_error(api.post(run_path(run, "/complete")), 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_unknown_key_in_body_is_invalid_argument(api, run):
    before = everything()
    body = {"user_id": "obiwan", "results": {"requestedItem": "x"}, "userId": "obiwan"}
    message = assert_error(api.post(run_path(run, "/complete"), body), 400, "INVALID_ARGUMENT")
    assert "userId" in message and "unknown key" in message
    assert everything() == before


@pytest.mark.parametrize("body", [
    {"user_id": 7, "results": {}},
    {"user_id": ["obiwan"], "results": {}},
    {"user_id": "obiwan", "results": "lightsaber"},
    {"user_id": "obiwan", "results": {}, "strategy": 1},
    {"user_id": None, "results": {}},
])
def test_wrong_types_are_invalid_argument_never_422(api, run, body):
    before = everything()
    assert_error(api.post(run_path(run, "/complete"), body), 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_numbers_are_not_coerced_from_strings_or_bools(api, it_request):
    before = everything()
    for version in ("0", True, 0.0):
        body = {"user_task_def_name": "it-request", "user_task_def_version": version, "user_group": "g"}
        assert_error(api.post("/user-task-runs", body), 400, "INVALID_ARGUMENT")
    assert everything() == before


@pytest.mark.parametrize("raw", [
    '{"user_id": "obi\\u0000wan", "results": {}}',
    '{"user_id": "obiwan", "results": {"requestedItem": "\\ud800"}}',
    '{"user_id": "obiwan", "results": {"\\u0000": 1}}',
])
def test_strings_a_database_cannot_store_are_invalid_argument(api, run, raw):
    before = everything()
    assert_error(api.post(run_path(run, "/save"), raw=raw), 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_nul_in_path_or_query_is_invalid_argument(api, run):
    assert_error(api.get(f"/user-task-runs/{run.wf_run_id}%00/{run.user_task_guid}"), 400, "INVALID_ARGUMENT")
    assert_error(api.get("/user-task-runs", {"user_id": "obi\x00wan"}), 400, "INVALID_ARGUMENT")


def test_oversize_body_is_invalid_argument(api, run, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = everything()
    body = {"user_id": "obiwan", "results": {"justification": "x" * 2000}}
    message = assert_error(api.post(run_path(run, "/save"), body), 400, "INVALID_ARGUMENT")
    assert "too large" in message
    assert everything() == before


def test_deeply_nested_json_is_invalid_argument(api, run):
    raw = '{"user_id": "obiwan", "results": {"justification": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    assert_error(api.post(run_path(run, "/save"), raw=raw), 400, "INVALID_ARGUMENT")


def test_unexpected_crash_is_a_json_500(api, run, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "cancel_user_task_run", boom)
    response = api.post(run_path(run, "/cancel"))
    assert response.status_code == 500
    assert response.json() == {"code": "INTERNAL", "message": "internal error; it has been logged"}


# --- documentation ------------------------------------------------------------------------------


def test_openapi_json_describes_every_operation(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    operations = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert operations == {
        ("POST", "/api/v1/user-task-defs"),
        ("GET", "/api/v1/user-task-defs/{name}"),
        ("GET", "/api/v1/user-task-defs/{name}/{version}"),
        ("POST", "/api/v1/user-task-runs"),
        ("GET", "/api/v1/user-task-runs"),
        ("GET", "/api/v1/user-task-runs/{wf_run_id}/{user_task_guid}"),
        ("GET", "/api/v1/wf-runs/{wf_run_id}/user-task-runs"),
        ("POST", "/api/v1/user-task-runs/{wf_run_id}/{user_task_guid}/complete"),
        ("POST", "/api/v1/user-task-runs/{wf_run_id}/{user_task_guid}/save"),
        ("POST", "/api/v1/user-task-runs/{wf_run_id}/{user_task_guid}/assign"),
        ("POST", "/api/v1/user-task-runs/{wf_run_id}/{user_task_guid}/cancel"),
        ("POST", "/api/v1/user-task-runs/{wf_run_id}/{user_task_guid}/comments"),
        ("PUT", "/api/v1/user-task-runs/{wf_run_id}/{user_task_guid}/comments/{user_comment_id}"),
        ("DELETE", "/api/v1/user-task-runs/{wf_run_id}/{user_task_guid}/comments/{user_comment_id}"),
    }
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert {"400", "401", "403", "404", "409"} <= set(operation["responses"]), (method, path)
            assert operation["security"] == [{"TokenAuth": []}]
            assert "422" not in operation["responses"]
    assert schema["components"]["securitySchemes"]["TokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "message"]
    assert schema["components"]["schemas"]["CompleteIn"]["additionalProperties"] is False


def test_interactive_docs_are_served(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert b"/api/openapi.json" in response.content
