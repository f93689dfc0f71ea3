"""assign_user_task_run, claim_user_task_run, release_user_task_run (DESIGN §3 "assign",
"claim", "release"; §7 for plain users)."""

import pytest

from tests.conftest import ADMIN, rejected
from usertasks import services
from usertasks.actors import SYSTEM, Actor
from usertasks.exceptions import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

pytestmark = pytest.mark.django_db

DISPATCHER = Actor(name="dispatcher", permissions=frozenset({"usertasks.assign_usertaskrun"}))


@pytest.fixture
def done(obiwans):
    services.complete_user_task_run(run_id=obiwans.run_id, user_id="obiwan", results={"requestedItem": "x"}, actor=SYSTEM)
    obiwans.refresh_from_db()
    return obiwans


@pytest.fixture
def cancelled(unassigned):
    services.cancel_user_task_run(run_id=unassigned.run_id, actor=SYSTEM)
    unassigned.refresh_from_db()
    return unassigned


def assign(run, actor, **kwargs):
    return services.assign_user_task_run(run_id=run.run_id, actor=actor, **kwargs)


def last_event(run):
    return run.events.order_by("-id").first()


# --- assign: the effect -------------------------------------------------------------------------


def test_assigning_a_user_to_an_unassigned_run(unassigned, engine):
    assign(unassigned, engine, user_id="yoda", user_group="jedi-council")

    unassigned.refresh_from_db()
    assert (unassigned.status, unassigned.user_id, unassigned.user_group) == ("ASSIGNED", "yoda", "jedi-council")
    assert unassigned.epoch == 2
    event = last_event(unassigned)
    assert (event.type, event.actor) == ("ASSIGNED", "wf-engine")
    assert event.payload == {
        "old_user_id": None, "old_user_group": "jedi-council", "new_user_id": "yoda", "new_user_group": "jedi-council",
    }
    assert unassigned.events.count() == 2


def test_an_omitted_user_group_is_cleared(unassigned, engine):
    assign(unassigned, engine, user_id="yoda")

    unassigned.refresh_from_db()
    assert (unassigned.status, unassigned.user_id, unassigned.user_group) == ("ASSIGNED", "yoda", None)
    assert last_event(unassigned).payload["new_user_group"] is None


def test_an_omitted_user_id_is_cleared_and_the_run_becomes_unassigned(obiwans, engine):
    assign(obiwans, engine, user_group="jedi-temple", override_claim=True)

    obiwans.refresh_from_db()
    assert (obiwans.status, obiwans.user_id, obiwans.user_group) == ("UNASSIGNED", None, "jedi-temple")
    assert last_event(obiwans).payload == {
        "old_user_id": "obiwan", "old_user_group": "jedi-council", "new_user_id": None, "new_user_group": "jedi-temple",
    }


def test_override_claim_reassigns_a_held_run(obiwans, engine):
    assign(obiwans, engine, user_id="yoda", user_group="jedi-council", override_claim=True)

    obiwans.refresh_from_db()
    assert (obiwans.status, obiwans.user_id, obiwans.epoch) == ("ASSIGNED", "yoda", 2)
    assert last_event(obiwans).payload["old_user_id"] == "obiwan"


def test_every_assignment_bumps_the_epoch_by_one(unassigned, engine):
    assign(unassigned, engine, user_id="yoda", user_group="jedi-council")
    assign(unassigned, engine, user_group="jedi-council", override_claim=True)
    assign(unassigned, engine, user_id="obiwan", user_group="jedi-council")

    unassigned.refresh_from_db()
    assert unassigned.epoch == 4
    assert [e.type for e in unassigned.events.all()] == ["ASSIGNED"] * 4


def test_assigning_the_same_owner_again_with_override_still_records_it(obiwans, engine):
    assign(obiwans, engine, user_id="obiwan", user_group="jedi-council", override_claim=True)

    obiwans.refresh_from_db()
    assert (obiwans.status, obiwans.user_id, obiwans.epoch) == ("ASSIGNED", "obiwan", 2)
    assert obiwans.events.count() == 2


# --- assign: rejections -------------------------------------------------------------------------


def test_override_claim_defaults_to_false(obiwans, engine):
    with rejected(obiwans, FailedPrecondition, "already assigned to obiwan"):
        assign(obiwans, engine, user_id="yoda", user_group="jedi-council")


def test_override_claim_false_refuses_even_a_group_only_assignment_of_a_held_run(obiwans, engine):
    with rejected(obiwans, FailedPrecondition, "already assigned to obiwan"):
        assign(obiwans, engine, user_group="jedi-temple", override_claim=False)


def test_neither_user_id_nor_group_is_invalid(obiwans, engine):
    with rejected(obiwans, InvalidArgument, "give a user_id or a user_group"):
        assign(obiwans, engine, override_claim=True)


@pytest.mark.parametrize(
    "owner, fragment",
    [
        ({"user_id": ""}, "user_id must not be blank"),
        ({"user_id": "  ", "user_group": "jedi-council"}, "user_id must not be blank"),
        ({"user_group": ""}, "user_group must not be blank"),
        ({"user_id": "yoda", "user_group": " "}, "user_group must not be blank"),
        ({"user_id": 3}, "user_id must be a string"),
    ],
)
def test_a_blank_or_malformed_owner_is_invalid(obiwans, engine, owner, fragment):
    with rejected(obiwans, InvalidArgument, fragment):
        assign(obiwans, engine, override_claim=True, **owner)


@pytest.mark.parametrize("override_claim", ["yes", 1, "false"])
def test_override_claim_must_be_a_boolean(obiwans, engine, override_claim):
    with rejected(obiwans, InvalidArgument, "override_claim must be true or false"):
        assign(obiwans, engine, user_id="yoda", override_claim=override_claim)


def test_an_unknown_run_is_not_found(it_request, engine):
    with pytest.raises(NotFound, match="UserTaskRun wf-x/abc not found"):
        services.assign_user_task_run(run_id=("wf-x", "abc"), user_id="yoda", actor=engine)


@pytest.mark.parametrize("run_id", [None, "wf-x", ("", "abc"), ("wf-x", " ")])
def test_a_malformed_run_id_is_invalid(it_request, engine, run_id):
    with pytest.raises(InvalidArgument):
        services.assign_user_task_run(run_id=run_id, user_id="yoda", actor=engine)


def test_malformed_arguments_are_reported_before_not_found(it_request, engine):
    with pytest.raises(InvalidArgument):
        services.assign_user_task_run(run_id=("wf-x", "abc"), user_id="", actor=engine)


@pytest.mark.parametrize("final", ["done", "cancelled"])
def test_a_final_run_cannot_be_reassigned_even_with_override(request, engine, final):
    run = request.getfixturevalue(final)
    status = run.status

    with rejected(run, FailedPrecondition, f"already {status} and cannot be reassigned"):
        assign(run, engine, user_id="yoda", user_group="jedi-council", override_claim=True)


# --- assign: plain users (§7) -------------------------------------------------------------------


def test_a_plain_user_may_claim_through_assign(unassigned, obiwan):
    assign(unassigned, obiwan, user_id="obiwan", user_group="jedi-council")

    unassigned.refresh_from_db()
    assert (unassigned.status, unassigned.user_id, unassigned.user_group) == ("ASSIGNED", "obiwan", "jedi-council")
    assert last_event(unassigned).actor == "obiwan"


def test_a_plain_user_may_release_their_own_run_through_assign(obiwans, obiwan):
    assign(obiwans, obiwan, user_group="jedi-council")

    obiwans.refresh_from_db()
    assert (obiwans.status, obiwans.user_id, obiwans.user_group) == ("UNASSIGNED", None, "jedi-council")


@pytest.mark.parametrize(
    "owner",
    [
        {"user_id": "yoda", "user_group": "jedi-council"},  # assign someone else
        {"user_id": "obiwan", "user_group": "jedi-temple"},  # move it to another group
        {"user_id": "obiwan"},  # drop the group
        {"user_group": "jedi-temple"},  # send it elsewhere
    ],
)
def test_a_plain_user_may_not_reassign(unassigned, obiwan, owner):
    with rejected(unassigned, PermissionDenied, "reassigning needs the assign permission"):
        assign(unassigned, obiwan, **owner)


def test_a_plain_user_may_not_release_someone_elses_run(obiwans, yoda):
    with rejected(obiwans, PermissionDenied):
        assign(obiwans, yoda, user_group="jedi-council")


def test_a_plain_user_cannot_claim_a_run_held_by_another(obiwans, yoda):
    with rejected(obiwans, FailedPrecondition, "already assigned to obiwan"):
        assign(obiwans, yoda, user_id="yoda", user_group="jedi-council")


def test_a_plain_user_cannot_take_a_held_run_with_override_claim(obiwans, yoda):
    with rejected(obiwans, PermissionDenied, "override_claim"):
        assign(obiwans, yoda, user_id="yoda", user_group="jedi-council", override_claim=True)


def test_a_plain_user_may_pass_override_claim_when_claiming_an_unassigned_run(unassigned, yoda):
    assign(unassigned, yoda, user_id="yoda", user_group="jedi-council", override_claim=True)

    unassigned.refresh_from_db()
    assert unassigned.user_id == "yoda"


def test_a_run_of_another_group_is_not_found_for_a_plain_user(obiwans, unassigned, mace):
    for run in (obiwans, unassigned):
        with rejected(run, NotFound, "not found"):
            assign(run, mace, user_id="mace", user_group="jedi-council")


def test_a_user_with_the_assign_permission_may_reassign(obiwans):
    assign(obiwans, DISPATCHER, user_id="mace", user_group="jedi-temple", override_claim=True)

    obiwans.refresh_from_db()
    assert (obiwans.user_id, obiwans.user_group) == ("mace", "jedi-temple")
    assert last_event(obiwans).actor == "dispatcher"


def test_permission_is_checked_before_the_state_of_the_run(done, yoda):
    with rejected(done, PermissionDenied):
        assign(done, yoda, user_id="mace", user_group="jedi-council", override_claim=True)


# --- claim --------------------------------------------------------------------------------------


def test_claim_takes_an_unassigned_run_of_my_group_and_keeps_the_group(unassigned, yoda):
    services.claim_user_task_run(run_id=unassigned.run_id, actor=yoda)

    unassigned.refresh_from_db()
    assert (unassigned.status, unassigned.user_id, unassigned.user_group, unassigned.epoch) == (
        "ASSIGNED", "yoda", "jedi-council", 2,
    )
    event = last_event(unassigned)
    assert (event.type, event.actor) == ("ASSIGNED", "yoda")
    assert event.payload == {
        "old_user_id": None, "old_user_group": "jedi-council", "new_user_id": "yoda", "new_user_group": "jedi-council",
    }


def test_yoda_cannot_claim_obiwans_run(obiwans, yoda):
    with rejected(obiwans, FailedPrecondition, "already assigned to obiwan"):
        services.claim_user_task_run(run_id=obiwans.run_id, actor=yoda)


def test_claiming_my_own_run_again_is_refused(obiwans, obiwan):
    with rejected(obiwans, FailedPrecondition, "already assigned to obiwan"):
        services.claim_user_task_run(run_id=obiwans.run_id, actor=obiwan)


def test_a_user_of_another_group_gets_not_found_on_claim(unassigned, mace):
    with rejected(unassigned, NotFound):
        services.claim_user_task_run(run_id=unassigned.run_id, actor=mace)


@pytest.mark.parametrize("final", ["done", "cancelled"])
def test_a_final_run_cannot_be_claimed(request, yoda, final):
    run = request.getfixturevalue(final)

    with rejected(run, FailedPrecondition, "cannot be claimed"):
        services.claim_user_task_run(run_id=run.run_id, actor=yoda)


def test_an_admin_may_claim_a_run_of_any_group(start_run):
    run = start_run(user_group="jedi-temple")

    services.claim_user_task_run(run_id=run.run_id, actor=ADMIN)

    run.refresh_from_db()
    assert (run.user_id, run.user_group) == ("admin", "jedi-temple")


def test_claim_of_an_unknown_run_is_not_found(it_request, yoda):
    with pytest.raises(NotFound):
        services.claim_user_task_run(run_id=("nope", "nope"), actor=yoda)


# --- release ------------------------------------------------------------------------------------


def test_the_owner_releases_the_run_back_to_its_group(obiwans, obiwan):
    services.release_user_task_run(run_id=obiwans.run_id, actor=obiwan)

    obiwans.refresh_from_db()
    assert (obiwans.status, obiwans.user_id, obiwans.user_group, obiwans.epoch) == (
        "UNASSIGNED", None, "jedi-council", 2,
    )
    event = last_event(obiwans)
    assert (event.type, event.actor) == ("ASSIGNED", "obiwan")
    assert event.payload == {
        "old_user_id": "obiwan", "old_user_group": "jedi-council", "new_user_id": None, "new_user_group": "jedi-council",
    }


def test_an_admin_may_release_anyones_run(obiwans):
    services.release_user_task_run(run_id=obiwans.run_id, actor=ADMIN)

    obiwans.refresh_from_db()
    assert (obiwans.status, obiwans.user_id) == ("UNASSIGNED", None)


def test_another_member_of_the_group_may_not_release(obiwans, yoda):
    with rejected(obiwans, PermissionDenied, "only the user who holds this run, or an admin, may release it"):
        services.release_user_task_run(run_id=obiwans.run_id, actor=yoda)


def test_a_user_of_another_group_gets_not_found_on_release(obiwans, mace):
    with rejected(obiwans, NotFound):
        services.release_user_task_run(run_id=obiwans.run_id, actor=mace)


def test_release_needs_a_group(start_run, obiwan):
    run = start_run(user_id="obiwan", user_group=None)

    with rejected(run, FailedPrecondition, "no group"):
        services.release_user_task_run(run_id=run.run_id, actor=obiwan)


def test_releasing_an_unassigned_run_is_refused(unassigned):
    with rejected(unassigned, FailedPrecondition, "not assigned to anyone"):
        services.release_user_task_run(run_id=unassigned.run_id, actor=ADMIN)


def test_a_final_run_cannot_be_released(done, obiwan):
    with rejected(done, FailedPrecondition, "already DONE and cannot be released"):
        services.release_user_task_run(run_id=done.run_id, actor=obiwan)
