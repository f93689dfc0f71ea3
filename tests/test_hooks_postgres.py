"""Timers under real concurrency (DESIGN §5), on PostgreSQL with real worker processes:
two workers over 200 due timers fire each exactly once; a worker killed in the middle of firing
loses no timer once a worker (sweeping at start) runs again."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from usertasks import tasks
from usertasks.models import Notification, ScheduledAction, UserTaskEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def reminder(delay):
    return [{"type": "REMINDER", "delay_seconds": delay, "hook": "ON_ARRIVAL"}]


def database_url(application_name: str) -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        f"?application_name={application_name}"
    )


@contextmanager
def worker(name: str, *args: str, log_dir: Path):
    """A worker process against the test database; stopped (SIGTERM) on exit if still running."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(name),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "test-only-secret-key",
        "TASKMANAGER_CALLBACK_SECRET": "test-only-callback-secret",
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    log = open(log_dir / f"{name}.log", "w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--no-reload", "--no-startup-delay", *args],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def backends(**where) -> list[tuple]:
    """(pid, application_name, wait_event_type) of the sessions on the test database."""
    conditions = " AND ".join(f"{column} = %s" for column in where)
    sql = "SELECT pid, application_name, wait_event_type FROM pg_stat_activity WHERE datname = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql + (f" AND {conditions}" if conditions else ""), [connection.settings_dict["NAME"], *where.values()])
        return cursor.fetchall()


def wait_for(condition, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def assert_each_fired_exactly_once(runs):
    assert not ScheduledAction.objects.filter(fired_at__isnull=True).exists()
    assert set(ScheduledAction.objects.values_list("outcome", flat=True)) == {"EXECUTED"}
    per_run = dict(
        UserTaskEvent.objects.filter(type="TASK_EXECUTED").values_list("user_task_run").annotate(n=Count("id"))
    )
    assert per_run == {run.pk: 1 for run in runs}
    assert Notification.objects.count() == len(runs)


@pytest.fixture
def obiwan_user(db):
    return User.objects.create_user("obiwan", email="obiwan@jedi.example")


def test_two_workers_fire_each_of_200_due_timers_exactly_once(start_run, obiwan_user, tmp_path):
    with worker("tm-worker-a", "--interval", "0.1", log_dir=tmp_path), \
            worker("tm-worker-b", "--interval", "0.1", log_dir=tmp_path):
        wait_for(lambda: {"tm-worker-a", "tm-worker-b"} <= {b[1] for b in backends()}, "both workers to poll")
        runs = [start_run(user_id="obiwan", actions=reminder(1)) for _ in range(200)]
        # A second trigger for every timer, as a sweep racing the first would add: both workers
        # now compete for the same rows, not just for jobs.
        for row in ScheduledAction.objects.all():
            tasks.fire_scheduled_action.using(run_after=row.due_at).enqueue(row.pk)
        wait_for(
            lambda: not DBTaskResult.objects.filter(status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]).exists(),
            "the workers to run all 400 triggers",
        )

    assert_each_fired_exactly_once(runs)
    jobs_per_worker = Counter(w for ids in DBTaskResult.objects.values_list("worker_ids", flat=True) for w in ids)
    assert len(jobs_per_worker) == 2 and sum(jobs_per_worker.values()) == 400
    assert DBTaskResult.objects.filter(status=TaskResultStatus.SUCCESSFUL).count() == 400


def test_a_worker_killed_while_firing_loses_no_due_timer(start_run, obiwan_user, tmp_path):
    runs = [start_run(user_id="obiwan", actions=reminder(2)) for _ in range(30)]
    victim = runs[10]
    db = connection.settings_dict
    # Another session holds the victim's row, so the worker blocks inside its firing transaction.
    holder = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"])
    try:
        holder.execute("SELECT id FROM usertasks_usertaskrun WHERE id = %s FOR UPDATE", [victim.pk])
        with worker("tm-worker-killed", "--interval", "0.2", log_dir=tmp_path) as doomed:
            [(pid, _, _)] = wait_for(
                lambda: backends(application_name="tm-worker-killed", wait_event_type="Lock"),
                "the worker to block while firing the victim's timer",
            )
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=20)
        holder.rollback()
    finally:
        holder.close()
    # The killed worker's session ends when PostgreSQL finds its client gone; its transaction
    # (the half-fired timer) is rolled back.
    wait_for(lambda: not backends(pid=pid), "the killed worker's session to end", timeout=30)

    row = ScheduledAction.objects.get(user_task_run=victim)
    assert row.fired_at is None
    assert DBTaskResult.objects.get(id=row.trigger_id).status == TaskResultStatus.RUNNING  # never re-run by itself
    assert ScheduledAction.objects.filter(fired_at__isnull=False).count() == 10

    with worker("tm-worker-restarted", "--batch", log_dir=tmp_path) as restarted:
        assert restarted.wait(timeout=120) == 0

    assert_each_fired_exactly_once(runs)
