"""The reminder badge in a real browser (Chromium through Playwright): it appears for the
assignee once a reminder fires, leads to the notification and the task, and goes away when read."""

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from usertasks import tasks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def obiwan_user(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only
    user = User.objects.create_user("obiwan", email="obiwan@jedi.example", password="obiwan")
    user.groups.add(Group.objects.create(name="jedi-council"))
    return user


def test_the_reminder_badge_appears_for_the_assignee_after_a_reminder_fires(page, live_server, start_run, obiwan_user):
    run = start_run(
        user_id="obiwan", user_group="jedi-council",
        actions=[{"type": "REMINDER", "delay_seconds": 0, "hook": "ON_ARRIVAL"}],
    )
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("obiwan")
    page.get_by_label("Password").fill("obiwan")
    page.get_by_role("button", name="Log in").click()
    link = page.locator("#notifications-link")
    expect(link).to_be_visible()
    expect(page.locator("#notifications-badge")).to_have_count(0)

    assert tasks.fire_scheduled_action.call(run.scheduled_actions.get().pk) == "EXECUTED"  # what the worker runs
    page.reload()
    expect(page.locator("#notifications-badge")).to_have_text("1")

    link.click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(page.locator(".notification-message")).to_contain_text(f"it-request task {run.wf_run_id}/{run.user_task_guid}")
    page.get_by_role("button", name="Open task").click()
    expect(page).to_have_url(f"{live_server.url}/tasks/{run.wf_run_id}/{run.user_task_guid}/")
    expect(page.locator("#notifications-badge")).to_have_count(0)
