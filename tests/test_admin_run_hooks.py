"""The admin's run page shows a run's timed hooks and every workflow-callback attempt (DESIGN §5, §6)."""

import socket

import pytest
from django.urls import reverse

from usertasks import hooks, services
from usertasks.actors import SYSTEM
from usertasks.models import CallbackDelivery

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_page_lists_timed_hooks_and_callback_attempts(admin_client, it_request):
    run = services.start_user_task_run(
        user_task_def_name="it-request",
        user_group="jedi-council",
        callback_url=f"http://127.0.0.1:{_closed_port()}/callback",
        actions=[{"type": "REMINDER", "delay_seconds": 60, "hook": "ON_ARRIVAL"},
                 {"type": "REASSIGN", "delay_seconds": 3600, "hook": "ON_ARRIVAL", "user_group": "jedi-temple"}],
        actor=SYSTEM,
    )
    services.complete_user_task_run(run_id=run.run_id, user_id="obiwan", results={"requestedItem": "x"}, actor=SYSTEM)
    delivery = CallbackDelivery.objects.get(user_task_run=run)
    hooks.deliver(delivery.pk)  # nothing listens on that port: one failed attempt is recorded

    page = admin_client.get(reverse("admin:usertasks_usertaskrun_change", args=[run.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Timed hooks" in html or "timed hooks" in html
    assert "REMINDER after 60 s" in html
    assert "REASSIGN after 3600 s user_group=jedi-temple" in html
    assert "USER_TASK_RUN_DONE" in html
    assert delivery.attempts.count() == 1
    attempt = delivery.attempts.get()
    assert attempt.status_code is None and attempt.error
    assert attempt.error in html or attempt.error[:40] in html


def test_run_page_query_count_does_not_grow_with_attempts(admin_client, it_request, django_assert_max_num_queries):
    run = services.start_user_task_run(
        user_task_def_name="it-request", user_group="jedi-council",
        callback_url=f"http://127.0.0.1:{_closed_port()}/callback", actor=SYSTEM,
    )
    services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM)
    delivery = CallbackDelivery.objects.get(user_task_run=run)
    url = reverse("admin:usertasks_usertaskrun_change", args=[run.pk])
    hooks.deliver(delivery.pk)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        admin_client.get(url)
    for _ in range(3):
        CallbackDelivery.objects.filter(pk=delivery.pk).update(status="PENDING", next_attempt_at=None, claimed_until=None)
        hooks.deliver(delivery.pk)
    assert delivery.attempts.count() >= 2
    with django_assert_max_num_queries(len(one.captured_queries)):
        admin_client.get(url)
