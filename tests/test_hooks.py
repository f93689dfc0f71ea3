"""Timed hooks (DESIGN §5): each action × hook fires at its time and not before, never after
DONE/CANCELLED, ON_TASK_ASSIGNED timers reset on reassignment, release to group, CANCEL's
failure (§6), default actions of the def, the worker's triggers and the sweep."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from usertasks import hooks, services, tasks
from usertasks.actors import SYSTEM
from usertasks.models import ScheduledAction

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def people(db):
    council = Group.objects.create(name="jedi-council")
    temple = Group.objects.create(name="jedi-temple")
    for name, group in (("obiwan", council), ("yoda", council), ("mace", temple)):
        User.objects.create_user(name, email=f"{name}@jedi.example").groups.add(group)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def fire(django_capture_on_commit_callbacks):
    """Wake every unfired timer now, due or not, by calling the task function as the worker
    does; returns {pk: outcome} ("" = nothing done)."""

    def _fire():
        outcomes = {}
        for pk in ScheduledAction.objects.filter(fired_at__isnull=True).order_by("pk").values_list("pk", flat=True):
            with django_capture_on_commit_callbacks(execute=True):
                outcomes[pk] = tasks.fire_scheduled_action.call(pk)
        return outcomes

    return _fire


def action(kind, delay, hook="ON_ARRIVAL", **target):
    return {"type": kind, "delay_seconds": delay, "hook": hook, **target}


def event_types(run):
    return list(run.events.order_by("id").values_list("type", flat=True))


def executed(run):
    return list(run.events.filter(type="TASK_EXECUTED").order_by("id"))


# --- every action × hook: fires at its time and not a second before ---------------------------

CASES = {
    "REMINDER": (action("REMINDER", 600), lambda run: executed(run)[0].payload["delivered_to"] == ["obiwan"]),
    "CANCEL": (action("CANCEL", 600), lambda run: run.status == "CANCELLED"),
    "REASSIGN": (
        action("REASSIGN", 600, user_id="yoda", user_group="jedi-council"),
        lambda run: (run.status, run.user_id) == ("ASSIGNED", "yoda"),
    ),
}


@pytest.mark.parametrize("hook", ["ON_ARRIVAL", "ON_TASK_ASSIGNED"])
@pytest.mark.parametrize("kind", list(CASES))
def test_each_action_and_hook_fires_at_its_due_time_and_not_before(kind, hook, start_run, people, clock, fire):
    spec, took_effect = CASES[kind]
    run = start_run(user_id="obiwan", actions=[{**spec, "hook": hook}])
    row = run.scheduled_actions.get()
    assert (row.hook, row.epoch, row.due_at) == (hook, 1, T0 + timedelta(seconds=600))

    clock.shift(599)
    assert fire() == {row.pk: ""}
    run.refresh_from_db()
    assert (run.status, run.user_id, event_types(run)) == ("ASSIGNED", "obiwan", ["ASSIGNED"])

    clock.shift(1)
    assert fire() == {row.pk: "EXECUTED"}
    run.refresh_from_db()
    assert took_effect(run)
    assert run.events.order_by("id").last().actor == "system"
    row.refresh_from_db()
    assert row.fired_at == T0 + timedelta(seconds=600)

    clock.shift(3600)
    assert row.pk not in fire()  # fired once per scheduling


def test_on_arrival_counts_from_creation_and_on_task_assigned_from_the_assignment(start_run, people, clock, fire, obiwan):
    run = start_run(
        user_group="jedi-council",
        actions=[action("REMINDER", 100, "ON_ARRIVAL"), action("REMINDER", 100, "ON_TASK_ASSIGNED")],
    )
    assert list(run.scheduled_actions.values_list("hook", flat=True)) == ["ON_ARRIVAL"]  # nobody assigned yet

    clock.shift(60)
    services.claim_user_task_run(run_id=run.run_id, actor=obiwan)
    clock.shift(40)
    fire()  # t=100: the arrival reminder goes to the new assignee; the assignment one is 60 s away
    assert [e.payload["delivered_to"] for e in executed(run)] == [["obiwan"]]
    clock.shift(59)
    fire()
    assert len(executed(run)) == 1
    clock.shift(1)
    fire()
    assert [e.payload["delivered_to"] for e in executed(run)] == [["obiwan"], ["obiwan"]]


# --- never after DONE / CANCELLED --------------------------------------------------------------


@pytest.mark.parametrize("ending", ["complete", "cancel"])
@pytest.mark.parametrize("hook", ["ON_ARRIVAL", "ON_TASK_ASSIGNED"])
@pytest.mark.parametrize("kind", list(CASES))
def test_a_timer_never_acts_on_a_done_or_cancelled_run(kind, hook, ending, start_run, people, clock, fire):
    run = start_run(user_id="obiwan", actions=[{**CASES[kind][0], "hook": hook}])
    clock.shift(10)
    if ending == "complete":
        services.complete_user_task_run(
            run_id=run.run_id, user_id="obiwan", results={"requestedItem": "lightsaber"}, actor=SYSTEM
        )
    else:
        services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM, message="not needed")
    run.refresh_from_db()
    before = (run.status, run.user_id, run.user_group, run.output, run.failure, event_types(run))

    clock.shift(600)
    assert set(fire().values()) == {"RUN_CLOSED"}
    run.refresh_from_db()
    assert (run.status, run.user_id, run.user_group, run.output, run.failure, event_types(run)) == before
    assert not run.notifications.exists()


# --- ON_TASK_ASSIGNED: reset on reassignment, stale timers are no-ops -------------------------


def test_reassignment_resets_on_task_assigned_timers_and_the_stale_one_does_nothing(start_run, people, clock, fire):
    run = start_run(user_id="obiwan", actions=[action("REMINDER", 60, "ON_TASK_ASSIGNED")])
    clock.shift(40)
    services.assign_user_task_run(run_id=run.run_id, user_id="yoda", user_group="jedi-council",
                                  override_claim=True, actor=SYSTEM)
    old, new = run.scheduled_actions.order_by("epoch")
    assert (old.epoch, new.epoch, new.due_at) == (1, 2, T0 + timedelta(seconds=100))

    clock.shift(20)  # t=60: obiwan's timer is due but the run moved on
    assert fire() == {old.pk: "STALE", new.pk: ""}
    assert executed(run) == []
    clock.shift(40)  # t=100: yoda's
    assert fire() == {new.pk: "EXECUTED"}
    assert [e.payload["delivered_to"] for e in executed(run)] == [["yoda"]]


def test_a_release_does_not_schedule_on_task_assigned_timers(start_run, people, clock, fire):
    run = start_run(user_id="obiwan", actions=[action("REMINDER", 60, "ON_TASK_ASSIGNED")])
    services.release_user_task_run(run_id=run.run_id, actor=SYSTEM)
    assert run.scheduled_actions.count() == 1
    clock.shift(60)
    assert set(fire().values()) == {"STALE"}


def test_claim_schedules_on_task_assigned_with_the_new_epoch(start_run, people, clock, fire, yoda):
    run = start_run(user_group="jedi-council", actions=[action("CANCEL", 30, "ON_TASK_ASSIGNED")])
    assert not run.scheduled_actions.exists()
    services.claim_user_task_run(run_id=run.run_id, actor=yoda)
    row = run.scheduled_actions.get()
    assert (row.epoch, row.due_at) == (2, T0 + timedelta(seconds=30))
    clock.shift(30)
    fire()
    run.refresh_from_db()
    assert run.status == "CANCELLED"


# --- REASSIGN ---------------------------------------------------------------------------------


def test_release_to_group_on_deadline_leaves_the_run_unassigned_in_its_group(start_run, people, clock, fire):
    run = start_run(
        user_id="obiwan", user_group="jedi-council",
        actions=[action("REASSIGN", 3600, "ON_TASK_ASSIGNED", user_group="jedi-council")],
    )
    clock.shift(3600)
    fire()
    run.refresh_from_db()
    assert (run.status, run.user_id, run.user_group, run.epoch) == ("UNASSIGNED", None, "jedi-council", 2)
    event = run.events.order_by("id").last()
    assert (event.type, event.actor, event.payload) == (
        "ASSIGNED", "system",
        {"old_user_id": "obiwan", "old_user_group": "jedi-council", "new_user_id": None, "new_user_group": "jedi-council"},
    )


def test_reassign_overrides_a_claim(start_run, people, clock, fire, mace):
    run = start_run(user_group="jedi-temple", actions=[action("REASSIGN", 5, user_group="jedi-council")])
    services.claim_user_task_run(run_id=run.run_id, actor=mace)
    clock.shift(5)
    fire()
    run.refresh_from_db()
    assert (run.status, run.user_id, run.user_group) == ("UNASSIGNED", None, "jedi-council")


def test_a_reassign_on_task_assigned_to_a_user_fires_once_not_in_a_loop(start_run, people, clock, fire):
    run = start_run(
        user_id="obiwan", user_group="jedi-council",
        actions=[action("REASSIGN", 0, "ON_TASK_ASSIGNED", user_id="yoda", user_group="jedi-council")],
    )
    assert fire() and fire()  # obiwan's fires (yoda now), then yoda's own one finds nothing to change
    assert fire() == {}
    run.refresh_from_db()
    assert (run.user_id, run.epoch) == ("yoda", 2)
    assert event_types(run) == ["ASSIGNED", "ASSIGNED"]
    assert list(run.scheduled_actions.order_by("epoch").values_list("outcome", flat=True)) == ["EXECUTED", "UNCHANGED"]


# --- CANCEL: DESIGN §6 failure ----------------------------------------------------------------


def test_cancel_without_an_exception_name_sets_the_error_failure(start_run, people, clock, fire):
    run = start_run(user_group="jedi-council", actions=[action("CANCEL", 86400)])
    clock.shift(86400)
    fire()
    run.refresh_from_db()
    assert run.status == "CANCELLED"
    assert run.failure["type"] == "ERROR" and run.failure["name"] == "USER_TASK_CANCELLED"
    assert "86400 s after arrival" in run.failure["message"]
    event = run.events.order_by("id").last()
    assert (event.type, event.actor, event.payload["message"]) == ("CANCELLED", "system", run.failure["message"])


def test_cancel_with_an_exception_name_sets_the_exception_failure(start_run, people, clock, fire):
    run = start_run(
        user_id="obiwan", on_cancellation_exception_name="approval-timed-out",
        actions=[action("CANCEL", 60, "ON_TASK_ASSIGNED")],
    )
    clock.shift(60)
    fire()
    run.refresh_from_db()
    assert run.status == "CANCELLED"
    assert (run.failure["type"], run.failure["name"]) == ("EXCEPTION", "approval-timed-out")
    assert "60 s after assignment" in run.failure["message"]


# --- default actions of the def ---------------------------------------------------------------


def test_default_actions_of_the_def_are_copied_onto_new_runs_and_fire(people, clock, fire):
    udef, _ = services.put_user_task_def(
        name="with-deadline", fields=[], actor=SYSTEM,
        default_actions=[{"type": "REMINDER", "delay_seconds": 30}, {"type": "CANCEL", "delay_seconds": 90}],
    )
    assert udef.default_actions == [action("REMINDER", 30), action("CANCEL", 90)]
    run = services.start_user_task_run(
        user_task_def_name="with-deadline", user_id="obiwan", actor=SYSTEM,
        actions=[action("REASSIGN", 60, user_id="yoda")],
    )
    assert run.actions == [action("REMINDER", 30), action("CANCEL", 90), action("REASSIGN", 60, user_id="yoda", user_group=None)]
    clock.shift(30)
    fire()
    clock.shift(30)
    fire()
    clock.shift(30)
    fire()
    run.refresh_from_db()
    assert event_types(run) == ["ASSIGNED", "TASK_EXECUTED", "ASSIGNED", "CANCELLED"]
    assert executed(run)[0].payload["delivered_to"] == ["obiwan"]
    assert (run.status, run.user_id) == ("CANCELLED", "yoda")


# --- at most once, failures -------------------------------------------------------------------


def test_a_duplicate_trigger_does_nothing(start_run, people, clock, django_capture_on_commit_callbacks):
    run = start_run(user_id="obiwan", actions=[action("REMINDER", 0)])
    row = run.scheduled_actions.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.fire_scheduled_action.call(row.pk) == "EXECUTED"
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.fire_scheduled_action.call(row.pk) == ""
    assert len(executed(run)) == 1 and run.notifications.count() == 1


def test_a_refused_action_is_marked_failed_and_changes_nothing(start_run, people, clock, fire):
    run = start_run(user_id="obiwan", actions=[action("REASSIGN", 0, user_id="yoda")])
    # An action that slipped past validation (e.g. edited in the database): the service refuses it.
    ScheduledAction.objects.filter(user_task_run=run).update(action=action("REASSIGN", 0, user_id=" "))
    assert set(fire().values()) == {"FAILED"}
    row = run.scheduled_actions.get()
    assert row.detail.startswith("INVALID_ARGUMENT")
    run.refresh_from_db()
    assert (run.user_id, event_types(run)) == ("obiwan", ["ASSIGNED"])


# --- the worker: triggers run only when due; the sweep replaces lost triggers ------------------


def run_worker_batch():
    call_command("run_worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_timer_only_once_it_is_due(start_run, people, clock):
    run = start_run(user_id="obiwan", actions=[action("REMINDER", 60)])
    row = run.scheduled_actions.get()
    job = DBTaskResult.objects.get(id=row.trigger_id)
    assert (job.run_after, job.status) == (T0 + timedelta(seconds=60), TaskResultStatus.READY)

    clock.shift(59)
    run_worker_batch()
    row.refresh_from_db()
    assert row.fired_at is None and executed(run) == []

    clock.shift(1)
    run_worker_batch()
    row.refresh_from_db()
    assert (row.fired_at, row.outcome) == (T0 + timedelta(seconds=60), "EXECUTED")
    assert len(executed(run)) == 1
    job.refresh_from_db()
    assert job.status == TaskResultStatus.SUCCESSFUL


@pytest.mark.django_db(transaction=True)
def test_the_sweep_replaces_triggers_lost_with_a_dead_worker_or_never_enqueued(start_run, people, clock):
    orphaned = start_run(user_id="obiwan", actions=[action("REMINDER", 30)])
    never = start_run(user_id="yoda", actions=[action("REMINDER", 30)])
    waiting = start_run(user_id="mace", user_group="jedi-temple", actions=[action("REMINDER", 30)])
    # A worker died while running the first trigger; the second was never enqueued.
    DBTaskResult.objects.filter(id=orphaned.scheduled_actions.get().trigger_id).update(status=TaskResultStatus.RUNNING)
    ScheduledAction.objects.filter(user_task_run=never).update(trigger_id=None)
    DBTaskResult.objects.filter(args_kwargs__args=[never.scheduled_actions.get().pk]).delete()

    clock.shift(5)
    assert hooks.sweep() == {"scheduled_actions": 0, "callback_deliveries": 0}  # nothing due, nothing lost yet
    clock.shift(25)
    assert hooks.sweep() == {"scheduled_actions": 2, "callback_deliveries": 0}
    assert hooks.sweep() == {"scheduled_actions": 0, "callback_deliveries": 0}  # their new triggers are waiting
    run_worker_batch()
    for run in (orphaned, never, waiting):
        assert len(executed(run)) == 1
    assert not ScheduledAction.objects.filter(fired_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_the_sweep_gives_a_not_yet_due_timer_whose_trigger_was_never_enqueued_a_trigger(start_run, people, clock):
    run = start_run(user_id="obiwan", actions=[action("REMINDER", 3600)])
    row = run.scheduled_actions.get()
    DBTaskResult.objects.filter(id=row.trigger_id).delete()
    ScheduledAction.objects.filter(pk=row.pk).update(trigger_id=None)
    clock.shift(60)
    assert hooks.sweep()["scheduled_actions"] == 1
    row.refresh_from_db()
    assert DBTaskResult.objects.get(id=row.trigger_id).run_after == T0 + timedelta(seconds=3600)
