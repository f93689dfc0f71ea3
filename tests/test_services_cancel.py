"""cancel_user_task_run (DESIGN §3 "cancel", §6 failure)."""

import pytest

from tests.conftest import ADMIN, rejected
from usertasks import services
from usertasks.actors import SYSTEM, Actor
from usertasks.exceptions import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

pytestmark = pytest.mark.django_db

CANCELLER = Actor(name="supervisor", permissions=frozenset({"usertasks.cancel_usertaskrun"}))


def cancel(run, actor, **kwargs):
    return services.cancel_user_task_run(run_id=run.run_id, actor=actor, **kwargs)


def last_event(run):
    return run.events.order_by("-id").first()


def test_cancelling_sets_status_failure_and_a_cancelled_event_with_the_default_message(obiwans, engine):
    cancel(obiwans, engine)

    obiwans.refresh_from_db()
    assert obiwans.status == "CANCELLED"
    assert obiwans.failure == {"type": "ERROR", "name": "USER_TASK_CANCELLED", "message": "UserTaskRun was cancelled"}
    assert obiwans.output is None
    event = last_event(obiwans)
    assert (event.type, event.actor, event.payload) == ("CANCELLED", "wf-engine", {"message": "UserTaskRun was cancelled"})
    assert obiwans.events.count() == 2


def test_cancelling_keeps_the_owner_and_the_epoch(obiwans, engine):
    cancel(obiwans, engine)

    obiwans.refresh_from_db()
    assert (obiwans.user_id, obiwans.user_group, obiwans.epoch) == ("obiwan", "jedi-council", 1)


def test_an_unassigned_run_can_be_cancelled(unassigned, engine):
    cancel(unassigned, engine, message="No longer needed")

    unassigned.refresh_from_db()
    assert (unassigned.status, unassigned.user_id, unassigned.user_group) == ("CANCELLED", None, "jedi-council")
    assert unassigned.failure["message"] == "No longer needed"
    assert last_event(unassigned).payload == {"message": "No longer needed"}


def test_the_failure_is_the_named_exception_when_the_run_has_one(start_run, engine):
    run = start_run(user_id="obiwan", on_cancellation_exception_name="funds-request-withdrawn")

    cancel(run, engine, message="Mission called off")

    run.refresh_from_db()
    assert run.failure == {"type": "EXCEPTION", "name": "funds-request-withdrawn", "message": "Mission called off"}


def test_the_named_exception_also_gets_the_default_message(start_run, engine):
    run = start_run(user_id="obiwan", on_cancellation_exception_name="withdrawn")

    cancel(run, engine)

    run.refresh_from_db()
    assert run.failure == {"type": "EXCEPTION", "name": "withdrawn", "message": "UserTaskRun was cancelled"}


@pytest.mark.parametrize("message", ["", "   ", None])
def test_a_blank_message_gets_the_default(obiwans, engine, message):
    cancel(obiwans, engine, message=message)

    obiwans.refresh_from_db()
    assert obiwans.failure["message"] == "UserTaskRun was cancelled"
    assert last_event(obiwans).payload == {"message": "UserTaskRun was cancelled"}


def test_a_message_that_is_not_text_is_invalid(obiwans, engine):
    with rejected(obiwans, InvalidArgument, "message must be a string"):
        cancel(obiwans, engine, message=404)


def test_a_done_run_cannot_be_cancelled(obiwans, engine):
    services.complete_user_task_run(run_id=obiwans.run_id, user_id="obiwan", results={"requestedItem": "x"}, actor=SYSTEM)

    with rejected(obiwans, FailedPrecondition, "already DONE and cannot be cancelled"):
        cancel(obiwans, engine)

    assert obiwans.status == "DONE" and obiwans.failure is None


def test_a_cancelled_run_cannot_be_cancelled_again(obiwans, engine):
    cancel(obiwans, engine, message="first")

    with rejected(obiwans, FailedPrecondition, "already CANCELLED and cannot be cancelled"):
        cancel(obiwans, engine, message="second")

    assert obiwans.failure["message"] == "first"


def test_an_unknown_run_is_not_found(it_request, engine):
    with pytest.raises(NotFound, match="UserTaskRun wf-x/abc not found"):
        services.cancel_user_task_run(run_id=("wf-x", "abc"), actor=engine)


# --- permission ---------------------------------------------------------------------------------


def test_the_owner_may_not_cancel_their_run(obiwans, obiwan):
    with rejected(obiwans, PermissionDenied, "obiwan may not cancel user task runs"):
        cancel(obiwans, obiwan)


def test_a_user_of_another_group_gets_not_found(obiwans, mace):
    with rejected(obiwans, NotFound):
        cancel(obiwans, mace)


@pytest.mark.parametrize("actor", [CANCELLER, ADMIN], ids=["cancel-permission", "superuser"])
def test_admins_may_cancel_any_run(start_run, actor):
    run = start_run(user_group="jedi-temple")

    cancel(run, actor)

    run.refresh_from_db()
    assert run.status == "CANCELLED"
    assert last_event(run).actor == actor.name


def test_permission_comes_before_the_state_of_the_run(obiwans, obiwan):
    services.cancel_user_task_run(run_id=obiwans.run_id, actor=SYSTEM)

    with rejected(obiwans, PermissionDenied):
        cancel(obiwans, obiwan)


def test_malformed_arguments_come_before_not_found(it_request, engine):
    with pytest.raises(InvalidArgument):
        services.cancel_user_task_run(run_id=("wf-x", "abc"), message=["x"], actor=engine)
