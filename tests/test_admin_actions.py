"""The runs admin (DESIGN §8, issue 5): changelist, read-only pages, and the "Reassign…" and
"Cancel" actions, which call the services once per run and report every run."""

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import ERROR, SUCCESS, WARNING, get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.conftest import ENGINE, snapshot
from usertasks import services
from usertasks.models import UserTaskEvent, UserTaskRun

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:usertasks_usertaskrun_changelist")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # admin_client and the staff users hash a password each; the real hasher costs ~1 s per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def mixed(start_run):
    """One run assigned to obiwan, one UNASSIGNED in jedi-council, one DONE."""
    assigned = start_run(user_id="obiwan", user_group="jedi-council")
    unassigned = start_run(user_group="jedi-council")
    done = start_run(user_id="obiwan", user_group="jedi-council")
    services.complete_user_task_run(run_id=done.run_id, user_id="obiwan", results={"requestedItem": "x"}, actor=ENGINE)
    return assigned, unassigned, done


def post_action(client, action, runs, **data):
    """The confirmed action, as the intermediate page posts it."""
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [run.pk for run in runs], "post": "yes", **data}
    )


def reported(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in get_messages(response.wsgi_request)]


def staff(username, *codenames):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="usertasks", codename__in=codenames))
    return user


def assigned_events(run):
    return list(run.events.filter(type=UserTaskEvent.Kind.ASSIGNED).order_by("id"))


# --- Reassign… --------------------------------------------------------------------------------


def test_reassign_first_shows_an_intermediate_page_and_changes_nothing(admin_client, mixed):
    before = [snapshot(run) for run in mixed]
    response = admin_client.post(CHANGELIST, {"action": "reassign_runs", "_selected_action": [r.pk for r in mixed]})
    assert response.status_code == 200
    assert "admin/usertasks/usertaskrun/reassign_selected.html" in [t.name for t in response.templates]
    page = response.content.decode()
    for name in ("user_id", "user_group", "override_claim"):
        assert f'name="{name}"' in page
    for run in mixed:
        assert str(run) in page
        assert f'name="_selected_action" value="{run.pk}"' in page
    assert 'name="post" value="yes"' in page
    assert "(final: will be refused)" in page  # the DONE run
    assert [snapshot(run) for run in mixed] == before


def test_reassign_without_override_claim_changes_only_the_unassigned_run(admin_client, mixed):
    assigned, unassigned, done = mixed
    before_assigned, before_done = snapshot(assigned), snapshot(done)
    events_before = {run.pk: len(assigned_events(run)) for run in mixed}

    response = post_action(admin_client, "reassign_runs", mixed, user_id="yoda", user_group="jedi-council")

    assert response.status_code == 302 and response.url == CHANGELIST
    unassigned.refresh_from_db()
    assert (unassigned.status, unassigned.user_id, unassigned.user_group) == ("ASSIGNED", "yoda", "jedi-council")
    assert snapshot(assigned) == before_assigned
    assert snapshot(done) == before_done
    new_events = assigned_events(unassigned)[events_before[unassigned.pk]:]
    assert [(e.actor, e.payload) for e in new_events] == [
        ("admin", {"old_user_id": None, "old_user_group": "jedi-council", "new_user_id": "yoda", "new_user_group": "jedi-council"})
    ]
    assert reported(response) == [
        (WARNING, "Reassigned 1 of 3 selected runs."),
        (ERROR, f"UserTaskRun {assigned}: not reassigned — UserTaskRun is already assigned to obiwan; pass override_claim to reassign it"),
        (SUCCESS, f"UserTaskRun {unassigned}: reassigned from group jedi-council to yoda (group jedi-council)."),
        (ERROR, f"UserTaskRun {done}: not reassigned — UserTaskRun is already DONE and cannot be reassigned"),
    ]


def test_reassign_with_override_claim_changes_every_open_run(admin_client, mixed):
    assigned, unassigned, done = mixed
    before_done = snapshot(done)
    events_before = {run.pk: len(assigned_events(run)) for run in mixed}

    response = post_action(
        admin_client, "reassign_runs", mixed, user_id="mace", user_group="jedi-temple", override_claim="on"
    )

    for run, old_user in ((assigned, "obiwan"), (unassigned, None)):
        run.refresh_from_db()
        assert (run.status, run.user_id, run.user_group) == ("ASSIGNED", "mace", "jedi-temple")
        new_events = assigned_events(run)[events_before[run.pk]:]
        assert len(new_events) == 1
        assert new_events[0].actor == "admin"
        assert new_events[0].payload == {
            "old_user_id": old_user, "old_user_group": "jedi-council",
            "new_user_id": "mace", "new_user_group": "jedi-temple",
        }  # fmt: skip
    assert snapshot(done) == before_done
    assert reported(response) == [
        (WARNING, "Reassigned 2 of 3 selected runs."),
        (SUCCESS, f"UserTaskRun {assigned}: reassigned from obiwan (group jedi-council) to mace (group jedi-temple)."),
        (SUCCESS, f"UserTaskRun {unassigned}: reassigned from group jedi-council to mace (group jedi-temple)."),
        (ERROR, f"UserTaskRun {done}: not reassigned — UserTaskRun is already DONE and cannot be reassigned"),
    ]


def test_reassign_to_a_group_only_releases_the_runs_to_that_group(admin_client, mixed):
    assigned = mixed[0]
    response = post_action(admin_client, "reassign_runs", [assigned], user_group="jedi-temple", override_claim="on")
    assigned.refresh_from_db()
    assert (assigned.status, assigned.user_id, assigned.user_group) == ("UNASSIGNED", None, "jedi-temple")
    assert reported(response)[0] == (SUCCESS, "Reassigned 1 of 1 selected runs.")


def test_reassign_with_neither_user_nor_group_redisplays_the_form_and_changes_nothing(admin_client, mixed):
    before = [snapshot(run) for run in mixed]
    response = post_action(admin_client, "reassign_runs", mixed, user_id="  ", user_group="")
    assert response.status_code == 200
    assert "Give a user_id or a user_group (or both)." in response.content.decode()
    assert [snapshot(run) for run in mixed] == before


def test_reassign_messages_escape_what_the_admin_typed(admin_client, start_run):
    run = start_run(user_group="jedi-council")
    response = post_action(admin_client, "reassign_runs", [run], user_id="<b>x</b>", user_group="jedi-council")
    page = admin_client.get(response.url).content.decode()
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


# --- Cancel -----------------------------------------------------------------------------------


def test_cancel_first_asks_for_confirmation(admin_client, mixed):
    before = [snapshot(run) for run in mixed]
    response = admin_client.post(CHANGELIST, {"action": "cancel_runs", "_selected_action": [r.pk for r in mixed]})
    assert response.status_code == 200
    assert "admin/usertasks/usertaskrun/cancel_selected.html" in [t.name for t in response.templates]
    assert "Yes, cancel these runs" in response.content.decode()
    assert [snapshot(run) for run in mixed] == before


def test_cancel_cancels_the_open_runs_and_reports_the_done_one(admin_client, mixed):
    assigned, unassigned, done = mixed
    before_done = snapshot(done)

    response = post_action(admin_client, "cancel_runs", mixed, message="Mission called off.")

    for run in (assigned, unassigned):
        run.refresh_from_db()
        assert run.status == "CANCELLED"
        assert run.failure == {"type": "ERROR", "name": "USER_TASK_CANCELLED", "message": "Mission called off."}
        event = run.events.order_by("-id").first()
        assert (event.type, event.actor, event.payload) == ("CANCELLED", "admin", {"message": "Mission called off."})
        assert run.events.filter(type="CANCELLED").count() == 1
    assert snapshot(done) == before_done
    assert reported(response) == [
        (WARNING, "Cancelled 2 of 3 selected runs."),
        (SUCCESS, f"UserTaskRun {assigned}: cancelled."),
        (SUCCESS, f"UserTaskRun {unassigned}: cancelled."),
        (ERROR, f"UserTaskRun {done}: not cancelled — UserTaskRun is already DONE and cannot be cancelled"),
    ]


def test_cancel_without_a_message_uses_the_default_one(admin_client, mixed):
    run = mixed[1]
    post_action(admin_client, "cancel_runs", [run], message="")
    run.refresh_from_db()
    assert run.failure["message"] == "UserTaskRun was cancelled"


def test_a_selection_beyond_the_limit_is_refused_whole(admin_client, mixed, monkeypatch):
    monkeypatch.setattr("usertasks.admin.MAX_ACTION_RUNS", 2)
    before = [snapshot(run) for run in mixed]
    response = post_action(admin_client, "cancel_runs", mixed)
    assert [snapshot(run) for run in mixed] == before
    assert reported(response) == [
        (ERROR, "Select at most 2 runs at a time (or use the API for larger batches); nothing was changed.")
    ]


# --- permissions ------------------------------------------------------------------------------


def action_choices(response) -> set[str]:
    return {name for name, _ in response.context["action_form"].fields["action"].choices if name}


def test_a_staff_user_without_the_permissions_sees_neither_action(client, mixed):
    client.force_login(staff("viewer", "view_usertaskrun"))
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Reassign…" not in page and "reassign_runs" not in page
    assert "cancel_runs" not in page
    assert response.context["action_form"] is None or not action_choices(response)
    for run in mixed:
        assert str(run) in page


def test_a_forged_action_post_without_the_permissions_changes_nothing(client, mixed):
    client.force_login(staff("viewer", "view_usertaskrun"))
    before = [snapshot(run) for run in mixed]
    for action in ("reassign_runs", "cancel_runs"):
        response = post_action(client, action, mixed, user_id="viewer", override_claim="on")
        assert response.status_code in (200, 302)
    assert [snapshot(run) for run in mixed] == before


def test_each_action_needs_its_own_permission(client, mixed):
    client.force_login(staff("assigner", "assign_usertaskrun"))
    assert action_choices(client.get(CHANGELIST)) == {"reassign_runs"}
    client.force_login(staff("canceller", "cancel_usertaskrun"))
    assert action_choices(client.get(CHANGELIST)) == {"cancel_runs"}


def test_a_staff_user_with_the_assign_permission_reassigns_as_themselves(client, mixed):
    client.force_login(staff("quartermaster", "assign_usertaskrun"))
    unassigned = mixed[1]
    post_action(client, "reassign_runs", [unassigned], user_id="yoda", user_group="jedi-council")
    unassigned.refresh_from_db()
    assert unassigned.user_id == "yoda"
    assert assigned_events(unassigned)[-1].actor == "quartermaster"


def test_non_staff_users_cannot_reach_the_admin(client, mixed):
    client.force_login(User.objects.create_user("obiwan", password="pw"))
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response.url


# --- read-only pages --------------------------------------------------------------------------


def test_the_run_page_is_read_only_and_lists_its_events(admin_client, mixed):
    assigned = mixed[0]
    url = reverse("admin:usertasks_usertaskrun_change", args=[assigned.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="user_id"' not in page and 'name="status"' not in page and 'name="_save"' not in page
    assert "events (append-only)" in page.lower() or "Events (append-only)" in page
    assert "ASSIGNED" in page
    # The events inline has no inputs either: nothing to change or delete.
    for name in ("time", "type", "actor", "payload", "DELETE"):
        assert f'name="events-0-{name}"' not in page
    before = snapshot(assigned)
    assert admin_client.post(url, {"status": "DONE", "user_id": "x"}).status_code == 403
    assert admin_client.post(reverse("admin:usertasks_usertaskrun_delete", args=[assigned.pk])).status_code == 403
    assert snapshot(assigned) == before


def test_the_run_page_offers_the_actions_for_an_open_run_only(admin_client, mixed):
    assigned, _, done = mixed
    page = admin_client.get(reverse("admin:usertasks_usertaskrun_change", args=[assigned.pk])).content.decode()
    assert 'value="reassign_runs"' in page and 'value="cancel_runs"' in page
    page = admin_client.get(reverse("admin:usertasks_usertaskrun_change", args=[done.pk])).content.decode()
    assert 'value="reassign_runs"' not in page and 'value="cancel_runs"' not in page


def test_events_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, mixed):
    event = mixed[0].events.first()
    before = (event.type, event.actor, event.payload, UserTaskEvent.objects.count())
    assert admin_client.get(reverse("admin:usertasks_usertaskevent_add")).status_code == 403
    change = reverse("admin:usertasks_usertaskevent_change", args=[event.pk])
    assert admin_client.get(change).status_code == 200
    assert admin_client.post(change, {"actor": "someone else"}).status_code == 403
    assert admin_client.post(reverse("admin:usertasks_usertaskevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    response = admin_client.post(
        reverse("admin:usertasks_usertaskevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    event.refresh_from_db()
    assert (event.type, event.actor, event.payload, UserTaskEvent.objects.count()) == before


def test_no_bulk_delete_on_runs(admin_client, mixed):
    assert "delete_selected" not in action_choices(admin_client.get(CHANGELIST))


# --- changelist -------------------------------------------------------------------------------


def test_the_changelist_shows_the_columns_of_the_issue(admin_client, mixed):
    response = admin_client.get(CHANGELIST)
    page = response.content.decode()
    headers = [h["text"] for h in response.context["result_headers"] if h["class_attrib"] != ' class="action-checkbox-column"']
    assert [str(h) for h in headers][-7:] == ["id", "type@version", "status", "user", "group", "created", "updated"]
    assert "it-request@0" in page
    assert str(mixed[0]) in page


def changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(CHANGELIST).status_code == 200
    return len(ctx.captured_queries)


def test_the_changelist_makes_as_many_queries_for_one_run_as_for_forty(admin_client, start_run, funds_def):
    start_run(user_group="jedi-council")
    one = changelist_queries(admin_client)
    for i in range(39):
        start_run(def_name=("it-request", "approve-funds-for-mission")[i % 2], user_id=f"user{i}", user_group=f"g{i % 3}")
    assert changelist_queries(admin_client) == one


@pytest.mark.parametrize(
    "term, expected",
    [
        ("wf-a", {"a"}),
        ("obiwan", {"a"}),
        ("jedi-temple", {"b"}),
        ("nobody", set()),
    ],
)
def test_search_matches_exact_ids_users_and_groups(admin_client, start_run, term, expected):
    runs = {
        "a": start_run(wf_run_id="wf-a", user_id="obiwan", user_group="jedi-council"),
        "b": start_run(wf_run_id="wf-b", user_group="jedi-temple"),
    }
    found = set(admin_client.get(CHANGELIST, {"q": term}).context["cl"].result_list)
    assert found == {runs[key] for key in expected}


def test_search_by_guid_and_by_full_id(admin_client, start_run):
    run = start_run(user_group="jedi-council")
    start_run(user_group="jedi-council")
    for term in (run.user_task_guid, str(run)):
        assert list(admin_client.get(CHANGELIST, {"q": term}).context["cl"].result_list) == [run]


def test_list_filters_status_task_type_and_group(admin_client, start_run, funds_def):
    it = start_run(user_group="jedi-council")
    funds = start_run(def_name="approve-funds-for-mission", user_id="mace", user_group="jedi-temple")

    def listed(**params):
        return set(admin_client.get(CHANGELIST, params).context["cl"].result_list)

    assert listed(status="ASSIGNED") == {funds}
    assert listed(user_task_def_name="it-request") == {it}
    assert listed(user_group="jedi-temple") == {funds}
    page = admin_client.get(CHANGELIST).content.decode()
    for title in ("By status", "By task type", "By group"):
        assert title in page


def test_user_text_is_escaped_in_the_admin(admin_client, start_run):
    run = start_run(user_id="<img src=x onerror=alert(1)>", user_group="jedi-council", notes="<script>alert('n')</script>")
    services.add_comment(run_id=run.run_id, user_id="obiwan", comment="<script>alert('c')</script>", actor=ENGINE)
    for url in (CHANGELIST, reverse("admin:usertasks_usertaskrun_change", args=[run.pk])):
        page = admin_client.get(url).content.decode()
        assert "<img src=x onerror=alert(1)>" not in page
        assert "<script>alert(" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_admin_never_writes_runs_with_queryset_update(admin_client, mixed, monkeypatch):
    """Audited fields change only through the services, which save one row at a time."""

    def refuse(self, **kwargs):
        raise AssertionError(f"queryset.update({kwargs}) on {self.model.__name__}")

    monkeypatch.setattr("django.db.models.query.QuerySet.update", refuse)
    post_action(admin_client, "reassign_runs", mixed, user_id="yoda", user_group="jedi-council", override_claim="on")
    post_action(admin_client, "cancel_runs", mixed)
    assert set(UserTaskRun.objects.values_list("status", flat=True)) == {"CANCELLED", "DONE"}
