"""Shared pieces of the JSON API tests (tests/test_api_*.py): users with tokens, an HTTP helper
and a snapshot of everything a rejected call must leave untouched. Imported by those files."""

import json

import pytest
from django.contrib.auth.models import Group, Permission, User

from usertasks.models import ApiToken, UserTaskDef, UserTaskEvent, UserTaskRun, WfRun

# username -> groups; wf-engine's group holds act_for_others, as in seed_demo.
API_USERS = {
    "wf-engine": ["workflow-engines"],
    "obiwan": ["jedi-council"],
    "yoda": ["jedi-council"],
    "mace": ["jedi-temple"],
}


class Api:
    """HTTP calls with a user's bearer token: `api.post("/user-task-runs", {...}, as_="obiwan")`."""

    def __init__(self, client, tokens):
        self.client = client
        self.tokens = tokens

    def call(self, method, path, body=None, *, as_="wf-engine", token=None, raw=None,
             content_type="application/json", query=None, headers=None):
        url = path if path.startswith("/api/") else "/api/v1" + path
        extra = dict(headers or {})
        secret = token if token is not None else self.tokens.get(as_)
        if secret is not None:
            extra["Authorization"] = f"Bearer {secret}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        kwargs = {"data": data, "content_type": content_type, "headers": extra}
        if method.upper() == "GET":  # a GET has no body: its data is the query string
            kwargs = {"data": query or {}, "headers": extra}
        return getattr(self.client, method.lower())(url, **kwargs)

    def get(self, path, query=None, **kw):
        return self.call("GET", path, query=query or {}, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def delete(self, path, body=None, **kw):
        return self.call("DELETE", path, body, **kw)


@pytest.fixture
def api_users(db):
    engines = Group.objects.create(name="workflow-engines")
    engines.permissions.add(Permission.objects.get(codename="act_for_others", content_type__app_label="usertasks"))
    users = {}
    for username, groups in API_USERS.items():
        user = User.objects.create(username=username)  # no password: hashing is slow and unused
        for name in groups:
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        users[username] = user
    users["admin"] = User.objects.create(username="admin", is_superuser=True, is_staff=True)
    return users


@pytest.fixture
def tokens(api_users):
    return {username: ApiToken.issue(user, name="tests")[1] for username, user in api_users.items()}


@pytest.fixture
def api(client, tokens):
    return Api(client, tokens)


def run_path(run, suffix=""):
    return f"/user-task-runs/{run.wf_run_id}/{run.user_task_guid}{suffix}"


def everything():
    """The whole domain state: a rejected call must leave it exactly as it was."""
    return (
        list(UserTaskDef.objects.order_by("pk").values_list("name", "version", "description")),
        list(WfRun.objects.order_by("pk").values_list("id", "callback_url")),
        list(
            UserTaskRun.objects.order_by("pk").values_list(
                "status", "user_id", "user_group", "results", "epoch", "output", "failure", "notes"
            )
        ),
        list(UserTaskEvent.objects.order_by("pk").values_list("type", "actor", "payload")),
    )


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    assert body["message"], body
    return body["message"]
