"""Reminders (DESIGN §5): the email with a link, the in-app notification and its pages, the
TASK_EXECUTED event; remind_user_task_run's checks."""

import re
from datetime import datetime, timezone as dt_timezone

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.template import RequestContext, Template
from django.test import Client, RequestFactory

from usertasks import services, tasks
from usertasks.actors import SYSTEM
from usertasks.exceptions import FailedPrecondition, NotFound, PermissionDenied
from usertasks.models import Notification

pytestmark = pytest.mark.django_db

REMINDER = {"type": "REMINDER", "delay_seconds": 0, "hook": "ON_ARRIVAL"}


@pytest.fixture
def people(db):
    council = Group.objects.create(name="jedi-council")
    temple = Group.objects.create(name="jedi-temple")
    users = {}
    for name, group, email in (
        ("obiwan", council, "obiwan@jedi.example"),
        ("yoda", council, "yoda@jedi.example"),
        ("mace", temple, "mace@jedi.example"),
        ("ahsoka", council, ""),  # no address: in-app only
    ):
        users[name] = User.objects.create_user(name, email=email)
        users[name].groups.add(group)
    User.objects.create_user("dooku", email="dooku@sith.example", is_active=False).groups.add(council)
    return users


@pytest.fixture
def fire_reminder(django_capture_on_commit_callbacks):
    def _fire(run):
        row = run.scheduled_actions.get()
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.fire_scheduled_action.call(row.pk) == "EXECUTED"
        run.refresh_from_db()
        return run.events.filter(type="TASK_EXECUTED").get()

    return _fire


def test_a_reminder_emails_the_assignee_a_link_and_notifies_them_in_app(start_run, people, fire_reminder, settings):
    settings.TASKMANAGER_BASE_URL = "https://tasks.jedi.example"
    run = start_run(user_id="obiwan", notes="Bring the <b>holocron</b>", actions=[REMINDER])

    event = fire_reminder(run)

    assert (event.actor, event.payload) == (
        "system",
        {"action": REMINDER, "delivered_to": ["obiwan"], "channels": ["in_app", "email"]},
    )
    [email] = mail.outbox
    assert email.to == ["obiwan@jedi.example"]
    assert email.subject == "Reminder: it-request task waiting for you"
    link = f"https://tasks.jedi.example/tasks/{run.wf_run_id}/{run.user_task_guid}/"
    assert link in email.body
    assert "Bring the <b>holocron</b>" in email.body  # plain text: nothing is interpreted
    [notification] = Notification.objects.all()
    assert (notification.user, notification.user_task_run, notification.read_at) == (people["obiwan"], run, None)
    assert "assigned to you" in notification.message


def test_an_unassigned_run_reminds_every_active_member_of_its_group_separately(start_run, people, fire_reminder):
    run = start_run(user_group="jedi-council", actions=[REMINDER])

    event = fire_reminder(run)

    assert event.payload["delivered_to"] == ["ahsoka", "obiwan", "yoda"]
    assert event.payload["channels"] == ["in_app", "email"]
    assert sorted(m.to[0] for m in mail.outbox) == ["obiwan@jedi.example", "yoda@jedi.example"]
    assert all(len(m.to) == 1 for m in mail.outbox)  # recipients do not see each other
    assert sorted(Notification.objects.values_list("user__username", flat=True)) == ["ahsoka", "obiwan", "yoda"]
    assert "waiting for someone in jedi-council" in Notification.objects.first().message


def test_an_assignee_without_an_address_is_notified_in_app_only(start_run, people, fire_reminder):
    run = start_run(user_id="ahsoka", actions=[REMINDER])
    event = fire_reminder(run)
    assert (event.payload["delivered_to"], event.payload["channels"]) == (["ahsoka"], ["in_app"])
    assert mail.outbox == []


def test_an_identity_with_no_django_user_is_recorded_as_not_reached(start_run, people, fire_reminder):
    run = start_run(user_id="external-42", actions=[REMINDER])
    event = fire_reminder(run)
    assert (event.payload["delivered_to"], event.payload["channels"]) == ([], [])
    assert mail.outbox == [] and not Notification.objects.exists()


def test_the_email_is_sent_only_after_the_transaction_commits(start_run, people, django_capture_on_commit_callbacks):
    run = start_run(user_id="obiwan")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.remind_user_task_run(run_id=run.run_id, actor=SYSTEM)
        assert mail.outbox == []
    assert mail.outbox == []
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 1


def test_remind_refuses_plain_users_and_closed_runs_and_changes_nothing(start_run, people, obiwan, snapshot_counts):
    run = start_run(user_id="obiwan")
    with pytest.raises(PermissionDenied):
        services.remind_user_task_run(run_id=run.run_id, actor=obiwan)
    with pytest.raises(NotFound):
        services.remind_user_task_run(run_id=("nope", "nope"), actor=SYSTEM)
    services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM)
    before = snapshot_counts(run)
    with pytest.raises(FailedPrecondition):
        services.remind_user_task_run(run_id=run.run_id, actor=SYSTEM)
    assert snapshot_counts(run) == before


@pytest.fixture
def snapshot_counts():
    def _counts(run):
        return run.events.count(), Notification.objects.count(), len(mail.outbox)

    return _counts


# --- the pages --------------------------------------------------------------------------------


@pytest.fixture
def reminded(start_run, people):
    """Two reminders for obiwan (one read) and one for yoda."""
    first = start_run(user_id="obiwan", notes="")
    second = start_run(user_id="obiwan")
    third = start_run(user_id="yoda")
    for run in (first, second, third):
        services.remind_user_task_run(run_id=run.run_id, actor=SYSTEM)
    Notification.objects.filter(user_task_run=first).update(read_at="2026-01-01T00:00:00Z")
    return first, second, third


def test_the_list_shows_only_my_notifications_newest_first(client, people, reminded):
    first, second, third = reminded
    client.force_login(people["obiwan"])
    response = client.get("/notifications/")
    assert response.status_code == 200
    page = response.content.decode()
    assert second.user_task_guid in page and first.user_task_guid in page
    assert third.user_task_guid not in page
    assert page.index(second.user_task_guid) < page.index(first.user_task_guid)
    assert page.count(">New<") == 1


def test_the_badge_shows_my_unread_count_and_links_to_the_list(people, reminded):
    request = RequestFactory().get("/")
    request.user = people["obiwan"]
    html = Template('{% include "usertasks/_notifications_badge.html" %}').render(RequestContext(request))
    assert 'href="/notifications/"' in html
    assert '<span class="badge rounded-pill bg-danger" id="notifications-badge">1</span>' in html

    Notification.objects.update(read_at="2026-01-01T00:00:00Z")
    html = Template('{% include "usertasks/_notifications_badge.html" %}').render(RequestContext(request))
    assert "Notifications" in html and "notifications-badge" not in html


def test_opening_a_notification_marks_it_read_and_goes_to_the_task(client, people, reminded):
    _, second, _ = reminded
    notification = Notification.objects.get(user_task_run=second)
    client.force_login(people["obiwan"])
    assert client.get(f"/notifications/{notification.pk}/open/").status_code == 405
    response = client.post(f"/notifications/{notification.pk}/open/")
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{second.wf_run_id}/{second.user_task_guid}/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_another_users_notification_is_a_404(client, people, reminded):
    yodas = Notification.objects.get(user__username="yoda")
    client.force_login(people["obiwan"])
    assert client.post(f"/notifications/{yodas.pk}/open/").status_code == 404
    yodas.refresh_from_db()
    assert yodas.read_at is None


def test_mark_all_read_touches_only_my_notifications(client, people, reminded):
    client.force_login(people["obiwan"])
    response = client.post("/notifications/read-all/")
    assert response.status_code == 302 and response["Location"] == "/notifications/"
    assert not Notification.objects.filter(user__username="obiwan", read_at__isnull=True).exists()
    assert Notification.objects.get(user__username="yoda").read_at is None


def test_the_pages_need_a_login_and_csrf(client, people, reminded):
    assert client.get("/notifications/")["Location"].startswith("/accounts/login/")
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(people["obiwan"])
    assert csrf_client.post("/notifications/read-all/").status_code == 403


def test_messages_are_escaped_on_the_list(client, people, start_run):
    run = start_run(user_id="obiwan")
    Notification.objects.create(user=people["obiwan"], user_task_run=run, message="<script>alert(1)</script>")
    client.force_login(people["obiwan"])
    page = client.get("/notifications/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_notification_pages_are_keyset_pages_that_show_each_notification_once(
    client, it_request, django_assert_max_num_queries
):
    from usertasks import notifications as notifications_module

    # They all share one instant: the keyset must still page through each exactly once.
    SAME_INSTANT = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)
    user = User.objects.create_user("paged", password="pw")
    run = services.start_user_task_run(user_task_def_name="it-request", user_group="jedi-council", actor=SYSTEM)
    size = notifications_module.PAGE_SIZE
    made = Notification.objects.bulk_create(
        Notification(user=user, user_task_run=run, message=f"reminder number {i:04d}", created_at=SAME_INSTANT)
        for i in range(size * 2 + 3)
    )
    client.force_login(user)
    seen, url, pages = [], "/notifications/", 0
    while url:
        with django_assert_max_num_queries(12):
            html = client.get(url).content.decode()
        pages += 1
        seen += [i for i in range(len(made)) if f"reminder number {i:04d}" in html]
        older = re.search(r'href="\?before=(\d+)"', html)
        url = f"/notifications/?before={older.group(1)}" if older else None
    assert pages == 3
    assert sorted(seen) == list(range(len(made))) and len(seen) == len(made)
