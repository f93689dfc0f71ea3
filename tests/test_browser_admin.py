"""The admin's "Reassign…" action and the audit dashboard in a real browser (Debian Chromium
through Playwright), against the demo data of seed_demo."""

import os
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from usertasks import services
from usertasks.actors import SYSTEM
from usertasks.models import UserTaskEvent, UserTaskRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # seed_demo hashes six passwords; the live server checks them with the same hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def log_in(page, live_server, username, *, at="/admin/login/"):
    page.goto(live_server.url + at)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username)  # seed_demo: the password is the username
    page.get_by_role("button", name="Log in").click()


def test_reassign_through_the_admin(page, live_server):
    call_command("seed_demo")
    unassigned = UserTaskRun.objects.get(wf_run_id="demo-it-unassigned")
    yodas = UserTaskRun.objects.get(wf_run_id="demo-it-yoda")
    done = UserTaskRun.objects.get(wf_run_id="demo-it-done")
    events_before = UserTaskEvent.objects.count()

    log_in(page, live_server, "admin")
    page.goto(live_server.url + "/admin/usertasks/usertaskrun/")
    expect(page.get_by_role("heading", name="Select UserTaskRun to view")).to_be_visible()
    for run in (unassigned, yodas, done):
        page.get_by_role("checkbox", name=f"Select this object for an action - {run}").check()
    page.get_by_label("Action:").select_option(label="Reassign…")
    page.get_by_role("button", name="Go").click()

    # The intermediate page: the three runs, and the form of user_id, user_group, override_claim.
    expect(page.get_by_role("heading", name="Reassign user task runs")).to_be_visible()
    for run in (unassigned, yodas, done):
        expect(page.get_by_role("link", name=str(run))).to_be_visible()
    page.get_by_label("user_id").fill("mace")
    page.get_by_label("user_group").fill("jedi-temple")
    expect(page.get_by_label("override_claim")).not_to_be_checked()
    page.get_by_role("button", name="Reassign").click()

    # Back on the changelist, one message per run.
    messages = page.locator("ul.messagelist")
    expect(messages.locator("li.warning")).to_have_text("Reassigned 1 of 3 selected runs.")
    expect(messages.locator("li.success")).to_have_text(
        f"UserTaskRun {unassigned}: reassigned from group jedi-council to mace (group jedi-temple)."
    )
    expect(messages.locator("li.error")).to_have_text(
        [
            f"UserTaskRun {yodas}: not reassigned — UserTaskRun is already assigned to yoda; pass override_claim to reassign it",
            f"UserTaskRun {done}: not reassigned — UserTaskRun is already DONE and cannot be reassigned",
        ]
    )
    unassigned.refresh_from_db()
    assert (unassigned.status, unassigned.user_id, unassigned.user_group) == ("ASSIGNED", "mace", "jedi-temple")
    assert UserTaskRun.objects.get(pk=yodas.pk).user_id == "yoda"
    assert UserTaskEvent.objects.count() == events_before + 1
    event = UserTaskEvent.objects.order_by("-id").first()
    assert (event.user_task_run_id, event.type, event.actor) == (unassigned.pk, "ASSIGNED", "admin")

    # Now with override_claim, from the run's own page.
    page.goto(live_server.url + f"/admin/usertasks/usertaskrun/{yodas.pk}/change/")
    page.get_by_role("button", name="Reassign…").click()
    page.get_by_label("user_id").fill("obiwan")
    page.get_by_label("user_group").fill("jedi-council")
    page.get_by_label("override_claim").check()
    page.get_by_role("button", name="Reassign").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(
        [
            "Reassigned 1 of 1 selected runs.",
            f"UserTaskRun {yodas}: reassigned from yoda (group jedi-council) to obiwan (group jedi-council).",
        ]
    )
    assert UserTaskRun.objects.get(pk=yodas.pk).user_id == "obiwan"


def test_the_audit_dashboard_draws_its_charts(page, live_server, tmp_path):
    call_command("seed_demo")
    now = timezone.now()
    # A month of history: runs created every day, most completed after a few hours.
    for day in range(28, 0, -1):
        for n in range(day % 4 + 1):
            with time_machine.travel(now - timedelta(days=day, hours=n), tick=False) as clock:
                run = services.start_user_task_run(
                    user_task_def_name=("it-request", "approve-funds-for-mission")[n % 2],
                    user_id=("obiwan", "yoda", "mace")[(day + n) % 3],
                    user_group="jedi-council",
                    actor=SYSTEM,
                )
                clock.shift(timedelta(hours=2 + (day * n) % 30))
                if (day + n) % 5 == 0:
                    services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM)
                elif day > 3:
                    results = {"requestedItem": "x"} if n % 2 == 0 else {"amount": 1.0, "approved": True}
                    services.complete_user_task_run(run_id=run.run_id, user_id=run.user_id, results=results, actor=SYSTEM)

    log_in(page, live_server, "manager", at="/accounts/login/")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(live_server.url + "/audit/dashboard/")
    expect(page.get_by_role("heading", name="Open, done and cancelled runs over time")).to_be_visible()
    flow = page.locator('svg[data-chart="flow"]')
    expect(flow.locator("polygon")).to_have_count(3)
    assert flow.bounding_box()["width"] > 600
    expect(page.locator('svg[data-chart="durations"] rect')).to_have_count(4)  # 2 task types × (median, p90)
    expect(page.locator('svg[data-chart="assignees"] g')).to_have_count(4)  # obiwan, yoda, mace, unassigned
    page.screenshot(path=os.environ.get("AUDIT_SCREENSHOT") or str(tmp_path / "dashboard.png"), full_page=True)

    page.get_by_role("link", name="Events").click()
    expect(page.get_by_role("table", name="Events, newest first")).to_be_visible()
    page.get_by_label("Event type").select_option("CANCELLED")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("table", name="Events, newest first").locator("tbody tr").first).to_contain_text("CANCELLED")
