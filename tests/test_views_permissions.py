"""DESIGN §7 through the web: each role × each action on each kind of run → allowed or refused;
a refusal (a forged POST) changes nothing; the buttons rendered are never ones that are refused."""

import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from tests.conftest import snapshot
from usertasks import services

ROLES = {
    "obiwan": {"groups": ["jedi-council"]},
    "yoda": {"groups": ["jedi-council"]},
    "mace": {"groups": ["jedi-temple"]},
    "manager": {"groups": ["managers"], "perms": ["view_audit"]},
    "admin": {"superuser": True},
}
ACTIONS = {
    "claim": ("claim/", {}),
    "release": ("release/", {}),
    "save": ("save/", {"requestedItem": "forged"}),
    "complete": ("complete/", {"requestedItem": "forged"}),
    "comment": ("comments/", {"comment": "forged"}),
    "edit_comment": ("comments/1/edit/", {"comment": "forged"}),
    "delete_comment": ("comments/1/delete/", {}),
}
BUTTONS = {"claim": "Claim", "release": "Release", "save": "Save progress", "complete": "Complete"}
OK = 302  # PRG: success redirects back to the task page

# HTTP status of each action by role, for a run ASSIGNED to obiwan in jedi-council, an
# UNASSIGNED run of jedi-council, and a DONE run obiwan completed. Each run has comment #1 by obiwan.
MATRIX = {
    "assigned": {
        #          view claim release save complete comment edit delete
        "obiwan": (200, 409, OK, OK, OK, OK, OK, OK),
        "yoda": (200, 409, 403, 403, 403, OK, 403, 403),
        "mace": (404, 404, 404, 404, 404, 404, 404, 404),
        "manager": (200, 403, 403, 403, 403, OK, 403, 403),
        # Admins act for others: complete reassigns the run to them (the page offers no button
        # for it: DESIGN §7 gives Complete to the assignee); save still respects obiwan's claim.
        "admin": (200, 409, OK, 409, OK, OK, OK, OK),
    },
    "unassigned": {
        "obiwan": (200, OK, 403, OK, OK, OK, OK, OK),
        "yoda": (200, OK, 403, OK, OK, OK, 403, 403),
        "mace": (404, 404, 404, 404, 404, 404, 404, 404),
        "manager": (200, 403, 403, 403, 403, OK, 403, 403),
        "admin": (200, OK, 409, OK, OK, OK, OK, OK),
    },
    "done": {
        "obiwan": (200, 409, 409, 409, 409, OK, OK, OK),
        "yoda": (200, 409, 403, 403, 403, OK, 403, 403),
        "mace": (404, 404, 404, 404, 404, 404, 404, 404),
        "manager": (200, 403, 403, 403, 403, OK, 403, 403),
        "admin": (200, 409, 409, 409, 409, OK, OK, OK),
    },
}
CASES = [
    (kind, role, action, row[i + 1])
    for kind, rows in MATRIX.items()
    for role, row in rows.items()
    for i, action in enumerate(ACTIONS)
]


def client_for(role: str) -> Client:
    spec = ROLES[role]
    user = User.objects.create_user(role, is_superuser=spec.get("superuser", False),
                                    is_staff=spec.get("superuser", False))
    user.groups.add(*[Group.objects.get_or_create(name=g)[0] for g in spec.get("groups", [])])
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="usertasks",
                                                         codename__in=spec.get("perms", [])))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def make_run(start_run, obiwan):
    def _make(kind):
        run = start_run(user_id=None if kind == "unassigned" else "obiwan")
        services.add_comment(run_id=run.run_id, user_id="obiwan", comment="mine", actor=obiwan)
        if kind == "done":
            services.complete_user_task_run(run_id=run.run_id, user_id="obiwan", results={"requestedItem": "x"},
                                            actor=obiwan)
        return run

    return _make


def rendered_buttons(page: str) -> set[str]:
    return set(re.findall(r'<button[^>]*type="submit"[^>]*>([^<]+)</button>', page)) & set(BUTTONS.values())


def url(run, action=""):
    return f"/tasks/{run.wf_run_id}/{run.user_task_guid}/{action}"


@pytest.mark.parametrize("kind, role, action, expected", CASES, ids=[f"{k}-{r}-{a}" for k, r, a, _ in CASES])
def test_permission_matrix(make_run, kind, role, action, expected):
    run = make_run(kind)
    client = client_for(role)
    before = snapshot(run)
    path, data = ACTIONS[action]
    response = client.post(url(run, path), data)
    assert response.status_code == expected, response.content.decode()[:2000]
    if expected == OK:
        assert snapshot(run) != before
        return
    assert snapshot(run) == before  # a refusal changes nothing, events included
    if expected != 404:
        page = response.content.decode()
        assert 'class="alert alert-danger"' in page  # the service's message is shown on the task page
        row = dict(zip(["view", *ACTIONS], MATRIX[kind][role]))
        allowed = {label for name, label in BUTTONS.items() if row[name] == OK}
        assert rendered_buttons(page) <= allowed  # the refusal page offers no forbidden button either


@pytest.mark.parametrize("kind", list(MATRIX))
@pytest.mark.parametrize("role", list(ROLES))
def test_view_and_rendered_buttons_follow_the_matrix(make_run, kind, role):
    run = make_run(kind)
    row = dict(zip(["view", *ACTIONS], MATRIX[kind][role]))
    response = client_for(role).get(url(run))
    assert response.status_code == row["view"]
    if row["view"] == 404:
        return
    page = response.content.decode()
    rendered = rendered_buttons(page)
    allowed = {label for action, label in BUTTONS.items() if row[action] == OK}
    assert rendered <= allowed, "a button the user may not use is rendered"
    if role != "admin":
        assert rendered == allowed
    editable = {a for a in ("edit_comment", "delete_comment") if f"comments/1/{a.split('_')[0]}/" in page}
    assert editable == {a for a in ("edit_comment", "delete_comment") if row[a] == OK}
    assert ("Add comment" in page) == (row["comment"] == OK)


def test_another_users_run_never_leaks_through_the_inbox_or_errors(make_run):
    run = make_run("assigned")
    mace = client_for("mace")
    for tab in ("assigned", "claimable", "all"):
        assert run.user_task_guid not in mace.get(f"/?tab={tab}").content.decode()
    assert run.user_task_guid not in mace.get("/?tab=all&user_id=obiwan").content.decode()
    response = mace.post(url(run, "complete/"), {"requestedItem": "x"})
    assert response.status_code == 404 and b"obiwan" not in response.content
