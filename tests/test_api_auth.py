"""Bearer tokens (create_api_token, hashing, revocation, last use, admin) and what a plain user's
token may do: see only their runs, learn nothing of the others (404), act only as themselves (403)."""

import hashlib
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.test_api_support import Api, api, api_users, assert_error, everything, run_path, tokens  # noqa: F401
from usertasks.models import ApiToken, UserTaskRun

LIGHTSABER = {"requestedItem": "lightsaber"}

# Every operation of DESIGN §4, with a body that would be valid.
OPERATIONS = [
    ("POST", "/user-task-defs", {"name": "x", "fields": []}),
    ("GET", "/user-task-defs/it-request", None),
    ("GET", "/user-task-defs/it-request/0", None),
    ("POST", "/user-task-runs", {"user_task_def_name": "it-request", "user_group": "jedi-council"}),
    ("GET", "/user-task-runs?status=UNASSIGNED", None),
    ("GET", "{run}", None),
    ("GET", "/wf-runs/{wf}/user-task-runs", None),
    ("POST", "{run}/complete", {"user_id": "obiwan", "results": LIGHTSABER}),
    ("POST", "{run}/save", {"user_id": "obiwan", "results": LIGHTSABER}),
    ("POST", "{run}/assign", {"user_id": "obiwan"}),
    ("POST", "{run}/cancel", {}),
    ("POST", "{run}/comments", {"user_id": "obiwan", "comment": "hi"}),
    ("PUT", "{run}/comments/1", {"user_id": "obiwan", "comment": "hi"}),
    ("DELETE", "{run}/comments/1", {"user_id": "obiwan"}),
]


def _path(template, run):
    return template.format(run=run_path(run), wf=run.wf_run_id)


@pytest.fixture
def group_run(start_run):
    return start_run(user_group="jedi-council")


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize("method,template,body", OPERATIONS)
def test_every_operation_without_a_token_is_unauthenticated_and_changes_nothing(api, group_run, method, template, body):
    before = everything()
    response = api.call(method, _path(template, group_run), body, as_=None)
    message = assert_error(response, 401, "UNAUTHENTICATED")
    assert "Bearer" in message and response["WWW-Authenticate"].startswith("Bearer")
    assert everything() == before


@pytest.mark.parametrize("method,template,body", OPERATIONS)
def test_every_operation_with_a_wrong_token_is_unauthenticated(api, group_run, method, template, body):
    before = everything()
    assert_error(api.call(method, _path(template, group_run), body, token="tm_not-a-token"), 401, "UNAUTHENTICATED")
    assert everything() == before


def test_other_authorization_schemes_are_unauthenticated(api, tokens, group_run):
    secret = tokens["wf-engine"]
    for header in (f"Token {secret}", f"Basic {secret}", secret, "Bearer", "Bearer "):
        response = api.call("GET", run_path(group_run), as_=None, headers={"Authorization": header})
        assert_error(response, 401, "UNAUTHENTICATED")


def test_a_valid_token_authenticates_as_its_user_and_records_last_use(api, api_users, group_run):
    token = ApiToken.objects.get(user=api_users["wf-engine"])
    assert token.last_used_at is None
    body = api.post(run_path(group_run, "/assign"), {"user_id": "obiwan", "user_group": "jedi-council"}).json()
    assert body["events"][-1]["actor"] == "wf-engine"
    token.refresh_from_db()
    assert token.last_used_at is not None and (timezone.now() - token.last_used_at).total_seconds() < 60


def test_a_revoked_token_is_unauthenticated(api, api_users, group_run):
    ApiToken.objects.filter(user=api_users["wf-engine"]).update(revoked_at=timezone.now())
    assert_error(api.get(run_path(group_run)), 401, "UNAUTHENTICATED")


def test_a_token_of_an_inactive_user_is_unauthenticated(api, api_users, group_run):
    User.objects.filter(username="wf-engine").update(is_active=False)
    assert_error(api.get(run_path(group_run)), 401, "UNAUTHENTICATED")


def test_only_a_hash_of_the_token_is_stored(api_users):
    token, secret = ApiToken.issue(api_users["obiwan"], name="laptop")
    stored = ApiToken.objects.filter(pk=token.pk).values()[0]
    assert secret not in {str(value) for value in stored.values()}
    assert stored["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(stored["token_prefix"]) and len(stored["token_prefix"]) < len(secret) // 4


def test_create_api_token_prints_the_token_alone_on_the_last_line(api_users, client, it_request):
    out = StringIO()
    call_command("create_api_token", "wf-engine", "--name", "engine", stdout=out)
    last_line = out.getvalue().rstrip("\n").split("\n")[-1]
    assert last_line.startswith("tm_") and " " not in last_line
    token = ApiToken.objects.get(name="engine")
    assert token.user.username == "wf-engine" and token.token_hash == ApiToken.hash_secret(last_line)
    response = Api(client, {"wf-engine": last_line}).get("/user-task-defs/it-request")
    assert response.status_code == 200


def test_create_api_token_for_unknown_user_fails(db):
    with pytest.raises(CommandError, match="no user named"):
        call_command("create_api_token", "darth", stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_admin_lists_tokens_without_the_hash_and_revokes_them(client, api_users, tokens):
    admin = api_users["admin"]
    client.force_login(admin)
    token = ApiToken.objects.get(user=api_users["obiwan"])
    page = client.get("/admin/usertasks/apitoken/")
    assert page.status_code == 200
    assert token.token_prefix in page.content.decode()
    assert token.token_hash not in page.content.decode() and tokens["obiwan"] not in page.content.decode()
    detail = client.get(f"/admin/usertasks/apitoken/{token.pk}/change/")
    assert token.token_hash not in detail.content.decode()
    response = client.post("/admin/usertasks/apitoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    assert_error(Api(client, tokens).get("/user-task-defs/x", as_="obiwan"), 401, "UNAUTHENTICATED")


# --- a plain user's token: another user's run does not exist for them (404) ---------------------


@pytest.fixture
def maces_run(start_run):
    """A run of jedi-temple, held by mace: obiwan neither holds it nor is in its group."""
    return start_run(user_id="mace", user_group="jedi-temple", wf_run_id="temple-wf")


@pytest.mark.parametrize("method,template,body", [op for op in OPERATIONS if "{run}" in op[1] or "{wf}" in op[1]])
def test_plain_user_cannot_see_or_act_on_another_users_run(api, maces_run, method, template, body):
    before = everything()
    missing = f"/user-task-runs/{maces_run.wf_run_id}/{'0' * 32}"
    missing_template = template.replace("{run}", missing).replace("{wf}", "no-such-wf")
    unknown = api.call(method, _path(missing_template, maces_run), body, as_="obiwan")
    hidden = api.call(method, _path(template, maces_run), body, as_="obiwan")
    assert_error(hidden, 404, "NOT_FOUND")
    assert_error(unknown, 404, "NOT_FOUND")
    # Nothing tells the two apart, not even the wording.
    assert hidden.json()["message"].replace(maces_run.user_task_guid, "0" * 32).replace("temple-wf", "no-such-wf") \
        == unknown.json()["message"].replace(maces_run.wf_run_id, "no-such-wf")
    assert everything() == before


def test_plain_user_search_never_returns_another_users_run(api, maces_run, start_run):
    own = start_run(user_id="obiwan", user_group="jedi-council")
    for query in ({"status": "ASSIGNED"}, {"user_id": "mace"}, {"user_group": "jedi-temple"}, {"user_task_def_name": "it-request"}):
        results = api.get("/user-task-runs", query, as_="obiwan").json()["results"]
        guids = {r["user_task_guid"] for r in results}
        assert maces_run.user_task_guid not in guids
        if "mace" not in str(query) and "temple" not in str(query):
            assert own.user_task_guid in guids


@pytest.mark.parametrize("path_suffix,body", [
    ("/complete", {"user_id": "yoda", "results": LIGHTSABER}),
    ("/save", {"user_id": "yoda", "results": LIGHTSABER}),
    ("/comments", {"user_id": "yoda", "comment": "I am yoda"}),
])
def test_plain_user_cannot_pass_another_user_id(api, start_run, path_suffix, body):
    run = start_run(user_id="obiwan", user_group="jedi-council")
    before = everything()
    message = assert_error(api.post(run_path(run, path_suffix), body, as_="obiwan"), 403, "PERMISSION_DENIED")
    assert "yoda" in message
    assert everything() == before


def test_plain_user_cannot_complete_a_run_of_their_group_held_by_someone_else(api, start_run):
    run = start_run(user_id="yoda", user_group="jedi-council")
    before = everything()
    body = {"user_id": "obiwan", "results": LIGHTSABER}
    assert_error(api.post(run_path(run, "/complete"), body, as_="obiwan"), 403, "PERMISSION_DENIED")
    assert everything() == before


def test_service_account_may_act_for_any_user(api, start_run):
    run = start_run(user_group="jedi-council")
    response = api.post(run_path(run, "/complete"), {"user_id": "yoda", "results": LIGHTSABER}, as_="wf-engine")
    assert response.status_code == 200
    assert UserTaskRun.objects.get(pk=run.pk).user_id == "yoda"


# --- the per-process cache of a token's actor (usertasks/api.py) --------------------------------


def test_a_token_actor_has_the_rights_of_its_user(api_users):
    from usertasks.actors import Actor

    perms = [f"usertasks.{p.codename}" for p in Permission.objects.filter(content_type__app_label="usertasks")]
    api_users["mace"].user_permissions.add(Permission.objects.get(codename="cancel_usertaskrun"))
    for username, user in api_users.items():
        user = User.objects.get(pk=user.pk)
        full, fast = Actor.for_user(user), Actor.for_active_user(user)
        assert (fast.name, fast.groups, fast.is_superuser) == (full.name, full.groups, full.is_superuser), username
        assert [fast.has(p) for p in perms] == [full.has(p) for p in perms], username


def test_group_and_permission_changes_reach_a_cached_token_actor(api, api_users, maces_run):
    path = run_path(maces_run)
    assert_error(api.get(path, as_="obiwan"), 404, "NOT_FOUND")
    api_users["obiwan"].groups.add(Group.objects.get(name="jedi-temple"))
    assert api.get(path, as_="obiwan").status_code == 200
    api_users["obiwan"].groups.remove(Group.objects.get(name="jedi-temple"))
    assert_error(api.get(path, as_="obiwan"), 404, "NOT_FOUND")
    Group.objects.get(name="jedi-council").permissions.add(Permission.objects.get(codename="view_audit"))
    assert api.get(path, as_="obiwan").status_code == 200


def test_revocation_and_superuser_changes_take_effect_at_once_despite_the_cache(api, api_users, maces_run):
    path = run_path(maces_run)
    assert_error(api.get(path, as_="yoda"), 404, "NOT_FOUND")
    User.objects.filter(username="yoda").update(is_superuser=True)  # no signal: the token query sees it
    assert api.get(path, as_="yoda").status_code == 200
    ApiToken.objects.filter(user__username="yoda").update(revoked_at=timezone.now())
    assert_error(api.get(path, as_="yoda"), 401, "UNAUTHENTICATED")
