"""Scratch (not committed): each mutant of the services must make the state machine fail."""
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.test_stateful import UserTaskRunMachine
from usertasks import services
from usertasks.actors import Actor
from usertasks.exceptions import FailedPrecondition
from usertasks.models import UserTaskEvent, UserTaskRun

S = settings(max_examples=60, stateful_step_count=25, deadline=None, database=None,
             suppress_health_check=list(HealthCheck), print_blob=False)


def m_reopen(mp):
    mp.setattr(services, "_require_open", lambda run, doing: None)


def m_no_epoch(mp):
    orig = services._assign
    def _assign(run, **kw):
        orig(run, **kw)
        type(run).objects.filter(pk=run.pk).update(epoch=run.epoch - 1)
    mp.setattr(services, "_assign", _assign)


def m_no_completed_event(mp):
    orig = services._record
    def _record(run, kind, **kw):
        if kind == "COMPLETED":
            return None
        return orig(run, kind, **kw)
    mp.setattr(services, "_record", _record)


def m_leaky_refusal(mp):
    orig = services.claim_user_task_run
    def claim(*, run_id, actor):
        if isinstance(run_id, tuple) and len(run_id) == 2:
            run = UserTaskRun.objects.filter(wf_run_id=run_id[0], user_task_guid=run_id[1]).first()
            if run is not None and run.user_id is not None:
                UserTaskEvent.objects.create(user_task_run=run, type="SAVED", actor=actor.name,
                                             payload={"user_id": actor.name, "results": {}})
                raise FailedPrecondition("already assigned")
        return orig(run_id=run_id, actor=actor)
    mp.setattr(services, "claim_user_task_run", claim)


def m_everyone_assigns(mp):
    mp.setattr(Actor, "can_assign", property(lambda self: True))


def m_everyone_sees(mp):
    mp.setattr(Actor, "can_see", lambda self, run: True)


def m_release_keeps_status(mp):
    orig = services._assign
    def _assign(run, *, user_id, user_group, actor):
        orig(run, user_id=user_id, user_group=user_group, actor=actor)
        if user_id is None:
            # group dropped on release
            pass
        else:
            type(run).objects.filter(pk=run.pk).update(user_group=None) if run.user_id else None
    mp.setattr(services, "_assign", _assign)


def m_save_changes_owner(mp):
    orig = services.save_user_task_run_progress
    def save(**kw):
        run = orig(**kw)
        UserTaskRun.objects.filter(pk=run.pk).update(notes="touched", user_id=kw["user_id"], status="ASSIGNED")
        return run
    mp.setattr(services, "save_user_task_run_progress", save)


def m_results_unchecked(mp):
    mp.setattr(services, "validate_results", lambda fields, results, require_all: dict(results))


@pytest.mark.django_db
@pytest.mark.parametrize("mutant", [m_reopen, m_no_epoch, m_no_completed_event, m_leaky_refusal, m_everyone_assigns,
                                    m_everyone_sees, m_release_keeps_status, m_save_changes_owner, m_results_unchecked],
                         ids=lambda f: f.__name__)
def test_mutant_is_caught(it_request, funds_def, monkeypatch, mutant):
    mutant(monkeypatch)
    with pytest.raises(BaseException) as err:
        run_state_machine_as_test(UserTaskRunMachine, settings=S)
    print(mutant.__name__, "->", str(err.value).splitlines()[0][:200])
