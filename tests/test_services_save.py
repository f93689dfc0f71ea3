"""save_user_task_run_progress (DESIGN §3 "save progress", §7 plain users)."""

import pytest

from tests.conftest import rejected
from usertasks import services
from usertasks.actors import SYSTEM
from usertasks.exceptions import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

pytestmark = pytest.mark.django_db


def save(run, actor, **kwargs):
    return services.save_user_task_run_progress(run_id=run.run_id, actor=actor, **kwargs)


def ownership(run):
    run.refresh_from_db()
    return run.status, run.user_id, run.user_group, run.epoch


# --- success ------------------------------------------------------------------------------------


def test_saving_stores_the_draft_and_records_a_saved_event(obiwans, obiwan):
    before = ownership(obiwans)

    save(obiwans, obiwan, user_id="obiwan", results={"requestedItem": "comlink", "justification": "lost"})

    assert ownership(obiwans) == before
    assert obiwans.results == {"requestedItem": "comlink", "justification": "lost"}
    assert obiwans.output is None
    event = obiwans.events.order_by("-id").first()
    assert (event.type, event.actor) == ("SAVED", "obiwan")
    assert event.payload == {"user_id": "obiwan", "results": {"requestedItem": "comlink", "justification": "lost"}}
    assert obiwans.events.count() == 2


def test_a_save_replaces_the_previous_draft_entirely(obiwans, obiwan):
    save(obiwans, obiwan, user_id="obiwan", results={"requestedItem": "comlink", "justification": "lost"})

    save(obiwans, obiwan, user_id="obiwan", results={"justification": "stolen"})

    obiwans.refresh_from_db()
    assert obiwans.results == {"justification": "stolen"}
    assert [e.type for e in obiwans.events.all()] == ["ASSIGNED", "SAVED", "SAVED"]


@pytest.mark.parametrize(
    "results", [{}, {"justification": "later"}, {"requestedItem": None}], ids=["empty", "optional-only", "required-null"]
)
def test_required_fields_are_not_enforced(obiwans, obiwan, results):
    save(obiwans, obiwan, user_id="obiwan", results=results)

    obiwans.refresh_from_db()
    assert obiwans.status == "ASSIGNED"
    assert obiwans.results == {k: v for k, v in results.items() if v is not None}


def test_values_are_stored_in_their_json_type(funds_run, engine):
    save(funds_run, engine, user_id="obiwan", results={"amount": 12, "headcount": 3, "approved": False})

    funds_run.refresh_from_db()
    assert funds_run.results == {"amount": 12.0, "headcount": 3, "approved": False}


def test_saving_an_unassigned_run_does_not_claim_it(unassigned, obiwan):
    save(unassigned, obiwan, user_id="obiwan", results={"justification": "looking into it"})

    assert ownership(unassigned) == ("UNASSIGNED", None, "jedi-council", 1)
    assert unassigned.results == {"justification": "looking into it"}


def test_an_engine_saving_for_a_user_on_an_unassigned_run_does_not_claim_it(unassigned, engine):
    save(unassigned, engine, user_id="yoda", results={})

    assert ownership(unassigned) == ("UNASSIGNED", None, "jedi-council", 1)
    assert unassigned.events.order_by("-id").first().payload["user_id"] == "yoda"


# --- policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [None, "FAIL_IF_CLAIMED_BY_OTHER"], ids=["default", "explicit"])
def test_fail_if_claimed_by_other_refuses_a_run_held_by_another_user(obiwans, engine, policy):
    with rejected(obiwans, FailedPrecondition, "claimed by obiwan"):
        save(obiwans, engine, user_id="yoda", results={"justification": "x"}, policy=policy)


def test_ignore_claim_saves_on_a_run_held_by_another_user_without_taking_it(obiwans, engine):
    save(obiwans, engine, user_id="yoda", results={"justification": "x"}, policy="IGNORE_CLAIM")

    assert ownership(obiwans) == ("ASSIGNED", "obiwan", "jedi-council", 1)
    assert obiwans.results == {"justification": "x"}
    event = obiwans.events.order_by("-id").first()
    assert (event.type, event.payload["user_id"]) == ("SAVED", "yoda")


def test_an_unknown_policy_is_invalid(obiwans, engine):
    with rejected(obiwans, InvalidArgument, "policy must be one of FAIL_IF_CLAIMED_BY_OTHER, IGNORE_CLAIM"):
        save(obiwans, engine, user_id="obiwan", results={}, policy="ignore_claim")


# --- rejections ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "results, field, fragment",
    [
        ({"requestedItem": 5}, "requestedItem", "must be a string"),
        ({"justification": True}, "justification", "must be a string"),
        ({"bogus": "x"}, "bogus", "is not a field of this UserTaskDef"),
    ],
)
def test_results_are_type_checked_and_a_refused_save_keeps_the_old_draft(obiwans, obiwan, results, field, fragment):
    save(obiwans, obiwan, user_id="obiwan", results={"justification": "draft"})

    with rejected(obiwans, InvalidArgument, f"{field} {fragment}") as excinfo:
        save(obiwans, obiwan, user_id="obiwan", results=results)

    assert set(excinfo.value.field_errors) == {field}
    assert obiwans.results == {"justification": "draft"}


@pytest.mark.parametrize(
    "results", [{"headcount": 1.5}, {"headcount": 2.0}, {"headcount": True}, {"amount": "1"}, {"approved": 0}]
)
def test_save_uses_the_same_strict_types_as_complete(funds_run, engine, results):
    with rejected(funds_run, InvalidArgument):
        save(funds_run, engine, user_id="obiwan", results=results)


def test_the_error_lists_every_offending_field(funds_run, engine):
    with rejected(funds_run, InvalidArgument) as excinfo:
        save(funds_run, engine, user_id="obiwan", results={"amount": "x", "headcount": 1.5, "nope": 1})

    assert set(excinfo.value.field_errors) == {"amount", "headcount", "nope"}
    for name in ("amount", "headcount", "nope"):
        assert name in excinfo.value.message


@pytest.mark.parametrize("results", [None, ["x"], "x"])
def test_results_must_be_a_json_object(obiwans, obiwan, results):
    with rejected(obiwans, InvalidArgument, "results must be a JSON object"):
        save(obiwans, obiwan, user_id="obiwan", results=results)


@pytest.mark.parametrize("user_id", [None, "", "  "])
def test_a_blank_user_id_is_invalid(obiwans, engine, user_id):
    with rejected(obiwans, InvalidArgument, "user_id"):
        save(obiwans, engine, user_id=user_id, results={})


@pytest.mark.parametrize("final", ["complete", "cancel"])
def test_a_final_run_cannot_be_saved(obiwans, engine, final):
    if final == "complete":
        services.complete_user_task_run(run_id=obiwans.run_id, user_id="obiwan", results={"requestedItem": "x"}, actor=SYSTEM)
    else:
        services.cancel_user_task_run(run_id=obiwans.run_id, actor=SYSTEM)

    with rejected(obiwans, FailedPrecondition, "cannot be saved"):
        save(obiwans, engine, user_id="obiwan", results={"justification": "too late"}, policy="IGNORE_CLAIM")


def test_an_unknown_run_is_not_found(it_request, engine):
    with pytest.raises(NotFound):
        services.save_user_task_run_progress(run_id=("wf-x", "abc"), user_id="obiwan", results={}, actor=engine)


# --- plain users (§7) and order of checks -------------------------------------------------------


def test_another_member_of_the_group_may_not_save_on_a_held_run_even_ignoring_the_claim(obiwans, yoda):
    with rejected(obiwans, PermissionDenied, "assigned to obiwan"):
        save(obiwans, yoda, user_id="yoda", results={}, policy="IGNORE_CLAIM")


def test_a_plain_user_may_not_save_as_someone_else(obiwans, yoda):
    with rejected(obiwans, PermissionDenied, "yoda may act only as themselves"):
        save(obiwans, yoda, user_id="obiwan", results={})


def test_a_user_of_another_group_gets_not_found(obiwans, unassigned, mace):
    for run in (obiwans, unassigned):
        with rejected(run, NotFound):
            save(run, mace, user_id="mace", results={})


def test_malformed_arguments_come_before_not_found(it_request, engine):
    with pytest.raises(InvalidArgument):
        services.save_user_task_run_progress(run_id=("wf-x", "abc"), user_id="", results={}, actor=engine)


def test_the_claim_comes_before_the_results(obiwans, engine):
    with rejected(obiwans, FailedPrecondition):
        save(obiwans, engine, user_id="yoda", results={"bogus": 1})
