"""complete_user_task_run (DESIGN §3 "complete", order of checks, §6 output, §7 plain users)."""

import pytest

from tests.conftest import rejected
from usertasks import services
from usertasks.actors import SYSTEM
from usertasks.exceptions import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

pytestmark = pytest.mark.django_db

FUNDS_OK = {"amount": 1500.5, "approved": True}


@pytest.fixture
def done(obiwans):
    complete(obiwans, SYSTEM, user_id="obiwan", results={"requestedItem": "comlink"})
    obiwans.refresh_from_db()
    return obiwans


@pytest.fixture
def cancelled(obiwans):
    services.cancel_user_task_run(run_id=obiwans.run_id, actor=SYSTEM)
    obiwans.refresh_from_db()
    return obiwans


def complete(run, actor, **kwargs):
    return services.complete_user_task_run(run_id=run.run_id, actor=actor, **kwargs)


def event_rows(run, since=0):
    return [(e.type, e.actor, e.payload) for e in run.events.order_by("id")[since:]]


# --- success ------------------------------------------------------------------------------------


def test_completing_marks_the_run_done_with_output_equal_to_results(funds_run, engine):
    complete(funds_run, engine, user_id="obiwan", results={"amount": 1500.5, "approved": True, "reason": "Kamino"})

    funds_run.refresh_from_db()
    assert funds_run.status == "DONE"
    assert (funds_run.user_id, funds_run.user_group, funds_run.epoch) == ("obiwan", "jedi-council", 1)
    assert funds_run.output == {"amount": 1500.5, "approved": True, "reason": "Kamino"}
    assert funds_run.results == funds_run.output
    assert event_rows(funds_run, since=1) == [("COMPLETED", "wf-engine", {"user_id": "obiwan"})]


def test_the_owner_completes_their_own_run(obiwans, obiwan):
    complete(obiwans, obiwan, user_id="obiwan", results={"requestedItem": "comlink", "justification": "lost it"})

    obiwans.refresh_from_db()
    assert obiwans.status == "DONE"
    assert obiwans.output == {"requestedItem": "comlink", "justification": "lost it"}
    assert event_rows(obiwans, since=1) == [("COMPLETED", "obiwan", {"user_id": "obiwan"})]


def test_completion_replaces_a_saved_draft(obiwans, obiwan):
    services.save_user_task_run_progress(
        run_id=obiwans.run_id, user_id="obiwan", results={"justification": "draft"}, actor=obiwan
    )

    complete(obiwans, obiwan, user_id="obiwan", results={"requestedItem": "comlink"})

    obiwans.refresh_from_db()
    assert obiwans.results == obiwans.output == {"requestedItem": "comlink"}


def test_an_acknowledge_only_task_completes_with_no_results(start_run, engine):
    services.put_user_task_def(name="acknowledge", fields=[], actor=SYSTEM)
    run = start_run(def_name="acknowledge", user_id="obiwan")

    complete(run, engine, user_id="obiwan", results={})

    run.refresh_from_db()
    assert (run.status, run.output) == ("DONE", {})


# --- strategies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [None, "ASSIGN_TO_NEW_USER"], ids=["default", "explicit"])
def test_assign_to_new_user_reassigns_keeping_the_group_then_completes(obiwans, engine, strategy):
    complete(obiwans, engine, user_id="yoda", results={"requestedItem": "walking stick"}, strategy=strategy)

    obiwans.refresh_from_db()
    assert (obiwans.status, obiwans.user_id, obiwans.user_group, obiwans.epoch) == ("DONE", "yoda", "jedi-council", 2)
    assert event_rows(obiwans, since=1) == [
        (
            "ASSIGNED",
            "wf-engine",
            {
                "old_user_id": "obiwan",
                "old_user_group": "jedi-council",
                "new_user_id": "yoda",
                "new_user_group": "jedi-council",
            },
        ),
        ("COMPLETED", "wf-engine", {"user_id": "yoda"}),
    ]


def test_completing_an_unassigned_run_assigns_it_to_the_completer(unassigned, yoda):
    complete(unassigned, yoda, user_id="yoda", results={"requestedItem": "walking stick"})

    unassigned.refresh_from_db()
    assert (unassigned.status, unassigned.user_id, unassigned.user_group, unassigned.epoch) == (
        "DONE", "yoda", "jedi-council", 2,
    )
    assert [t for t, _, _ in event_rows(unassigned)] == ["ASSIGNED", "ASSIGNED", "COMPLETED"]
    assert event_rows(unassigned)[1][2]["old_user_id"] is None


def test_fail_on_mismatched_user_id_refuses_another_user(obiwans, engine):
    with rejected(obiwans, FailedPrecondition, "assigned to obiwan, not yoda"):
        complete(obiwans, engine, user_id="yoda", results={"requestedItem": "x"}, strategy="FAIL_ON_MISMATCHED_USER_ID")


def test_fail_on_mismatched_user_id_completes_for_the_owner(obiwans, engine):
    complete(obiwans, engine, user_id="obiwan", results={"requestedItem": "x"}, strategy="FAIL_ON_MISMATCHED_USER_ID")

    obiwans.refresh_from_db()
    assert (obiwans.status, obiwans.user_id, obiwans.epoch) == ("DONE", "obiwan", 1)


def test_an_unknown_strategy_is_invalid(obiwans, engine):
    with rejected(obiwans, InvalidArgument, "strategy must be one of ASSIGN_TO_NEW_USER, FAIL_ON_MISMATCHED_USER_ID"):
        complete(obiwans, engine, user_id="obiwan", results={"requestedItem": "x"}, strategy="assign_to_new_user")


# --- results against the definition ---------------------------------------------------------------


@pytest.mark.parametrize(
    "results, field, fragment",
    [
        pytest.param({**FUNDS_OK, "headcount": 1.5}, "headcount", "must be an integer", id="INT-rejects-1.5"),
        pytest.param({**FUNDS_OK, "headcount": 2.0}, "headcount", "must be an integer", id="INT-rejects-2.0"),
        pytest.param({**FUNDS_OK, "headcount": True}, "headcount", "must be an integer", id="INT-rejects-true"),
        pytest.param({**FUNDS_OK, "headcount": "3"}, "headcount", "must be an integer", id="INT-rejects-string"),
        pytest.param({**FUNDS_OK, "headcount": 2**63}, "headcount", "must be an integer", id="INT-rejects-beyond-int64"),
        pytest.param({**FUNDS_OK, "amount": "1500"}, "amount", "must be a number", id="DOUBLE-rejects-string"),
        pytest.param({**FUNDS_OK, "amount": False}, "amount", "must be a number", id="DOUBLE-rejects-bool"),
        pytest.param({**FUNDS_OK, "amount": float("nan")}, "amount", "must be a number", id="DOUBLE-rejects-nan"),
        pytest.param({**FUNDS_OK, "approved": 1}, "approved", "must be true or false", id="BOOL-rejects-1"),
        pytest.param({**FUNDS_OK, "approved": "true"}, "approved", "must be true or false", id="BOOL-rejects-string"),
        pytest.param({**FUNDS_OK, "reason": 42}, "reason", "must be a string", id="STR-rejects-number"),
        pytest.param({**FUNDS_OK, "reason": ["a"]}, "reason", "must be a string", id="STR-rejects-list"),
        pytest.param({**FUNDS_OK, "bogus": 1}, "bogus", "is not a field of this UserTaskDef", id="unknown-field"),
        pytest.param({"approved": True}, "amount", "is required", id="missing-required"),
        pytest.param({"amount": None, "approved": True}, "amount", "is required", id="null-required-is-absent"),
    ],
)
def test_results_that_do_not_match_the_def_are_invalid_and_change_nothing(funds_run, engine, results, field, fragment):
    with rejected(funds_run, InvalidArgument, f"{field} {fragment}") as excinfo:
        complete(funds_run, engine, user_id="obiwan", results=results)

    assert set(excinfo.value.field_errors) == {field}
    assert fragment in excinfo.value.field_errors[field]


@pytest.mark.parametrize(
    "results, output",
    [
        pytest.param({"amount": 1500, "approved": False}, {"amount": 1500.0, "approved": False}, id="DOUBLE-accepts-integer"),
        pytest.param(
            {"amount": 0, "approved": True, "headcount": 0}, {"amount": 0.0, "approved": True, "headcount": 0}, id="zeros"
        ),
        pytest.param({**FUNDS_OK, "headcount": -3}, {**FUNDS_OK, "headcount": -3}, id="INT-negative"),
        pytest.param({**FUNDS_OK, "headcount": 2**63 - 1}, {**FUNDS_OK, "headcount": 2**63 - 1}, id="INT-int64-max"),
        pytest.param({**FUNDS_OK, "reason": None, "headcount": None}, FUNDS_OK, id="null-optional-is-dropped"),
        pytest.param({**FUNDS_OK, "reason": ""}, {**FUNDS_OK, "reason": ""}, id="STR-optional-empty"),
    ],
)
def test_results_of_the_right_json_type_are_accepted(funds_run, engine, results, output):
    complete(funds_run, engine, user_id="obiwan", results=results)

    funds_run.refresh_from_db()
    assert funds_run.status == "DONE"
    assert funds_run.output == output
    assert isinstance(funds_run.output["amount"], float)


def test_the_error_lists_every_offending_field(funds_run, engine):
    results = {"amount": "lots", "headcount": 2.0, "reason": 7, "bogus": True}

    with rejected(funds_run, InvalidArgument) as excinfo:
        complete(funds_run, engine, user_id="obiwan", results=results)

    message = excinfo.value.message
    for fragment in (
        "amount must be a number",
        "headcount must be an integer",
        "reason must be a string",
        "bogus is not a field",
        "approved is required",
    ):
        assert fragment in message
    assert set(excinfo.value.field_errors) == {"amount", "headcount", "reason", "bogus", "approved"}


def test_invalid_results_leave_a_saved_draft_alone(obiwans, obiwan):
    services.save_user_task_run_progress(
        run_id=obiwans.run_id, user_id="obiwan", results={"justification": "draft"}, actor=obiwan
    )

    with rejected(obiwans, InvalidArgument):
        complete(obiwans, obiwan, user_id="obiwan", results={"justification": "final"})

    obiwans.refresh_from_db()
    assert obiwans.results == {"justification": "draft"}


def test_invalid_results_for_another_user_do_not_reassign(obiwans, engine):
    """ASSIGN_TO_NEW_USER must not leave a reassignment behind when the results are refused."""
    with rejected(obiwans, InvalidArgument):
        complete(obiwans, engine, user_id="yoda", results={})


@pytest.mark.parametrize("results", [None, [], "requestedItem=x", 5])
def test_results_must_be_a_json_object(obiwans, engine, results):
    with rejected(obiwans, InvalidArgument, "results must be a JSON object"):
        complete(obiwans, engine, user_id="obiwan", results=results)


# --- arguments and state ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id, fragment", [(None, "user_id is required"), ("", "must not be blank"), ("   ", "must not be blank")]
)
def test_a_blank_user_id_is_invalid(obiwans, engine, user_id, fragment):
    with rejected(obiwans, InvalidArgument, fragment):
        complete(obiwans, engine, user_id=user_id, results={"requestedItem": "x"})


@pytest.mark.parametrize("final", ["done", "cancelled"])
def test_a_final_run_cannot_be_completed(request, engine, final):
    run = request.getfixturevalue(final)

    with rejected(run, FailedPrecondition, f"already {run.status} and cannot be completed"):
        complete(run, engine, user_id="obiwan", results={"requestedItem": "again"})


def test_an_unknown_run_is_not_found(it_request, engine):
    with pytest.raises(NotFound, match="not found"):
        services.complete_user_task_run(run_id=("wf-x", "abc"), user_id="obiwan", results={}, actor=engine)


# --- plain users (§7) ---------------------------------------------------------------------------


def test_another_member_of_the_group_may_not_complete_a_held_run(obiwans, yoda):
    with rejected(obiwans, PermissionDenied, "assigned to obiwan"):
        complete(obiwans, yoda, user_id="yoda", results={"requestedItem": "x"})


def test_a_plain_user_may_not_complete_as_someone_else(obiwans, obiwan):
    with rejected(obiwans, PermissionDenied, "obiwan may act only as themselves, not as yoda"):
        complete(obiwans, obiwan, user_id="yoda", results={"requestedItem": "x"})


def test_a_user_of_another_group_gets_not_found(obiwans, unassigned, mace):
    for run in (obiwans, unassigned):
        with rejected(run, NotFound):
            complete(run, mace, user_id="mace", results={"requestedItem": "x"})


def test_a_run_of_another_group_assigned_to_me_may_be_completed(start_run, mace):
    run = start_run(user_id="mace", user_group="jedi-council")

    complete(run, mace, user_id="mace", results={"requestedItem": "x"})

    run.refresh_from_db()
    assert run.status == "DONE"


# --- order of checks (§3): malformed → NOT_FOUND → PERMISSION_DENIED → state → results ----------


def test_malformed_arguments_come_before_not_found(it_request, engine):
    for kwargs in ({"user_id": "", "results": {}}, {"user_id": "obiwan", "results": []},
                   {"user_id": "obiwan", "results": {}, "strategy": "NOPE"}):
        with pytest.raises(InvalidArgument):
            services.complete_user_task_run(run_id=("wf-x", "abc"), actor=engine, **kwargs)


def test_not_found_comes_before_permission_denied(obiwans, mace):
    """mace may not act as obiwan either, but he must not learn that the run exists."""
    with rejected(obiwans, NotFound):
        complete(obiwans, mace, user_id="obiwan", results={"requestedItem": "x"})


def test_permission_denied_comes_before_the_state_of_the_run(done, yoda):
    with rejected(done, PermissionDenied):
        complete(done, yoda, user_id="yoda", results={"requestedItem": "x"})


@pytest.mark.parametrize("final", ["done", "cancelled"])
def test_the_state_of_the_run_comes_before_the_results(request, engine, final):
    run = request.getfixturevalue(final)

    with rejected(run, FailedPrecondition):
        complete(run, engine, user_id="obiwan", results={"bogus": 1})


def test_a_mismatched_user_comes_before_the_results(obiwans, engine):
    with rejected(obiwans, FailedPrecondition):
        complete(obiwans, engine, user_id="yoda", results={"bogus": 1}, strategy="FAIL_ON_MISMATCHED_USER_ID")


def test_a_defs_fields_are_read_once_per_process_and_never_reused_for_another_def(
    start_run, django_assert_num_queries
):
    from usertasks.models import UserTaskDef, UserTaskField

    first, second = start_run(user_id="obiwan"), start_run(user_id="obiwan")
    complete(first, SYSTEM, user_id="obiwan", results={"requestedItem": "comlink"})
    udef = UserTaskDef.objects.get(pk=second.user_task_def_id)
    names = [f.name for f in udef.fields.all()]
    with django_assert_num_queries(0):
        assert [f.name for f in services._def_fields(udef)] == names
    # A field saved in this process (never done by the services: a def version is immutable)
    # drops the cached fields, and a row with the same id but another identity is not trusted.
    UserTaskField.objects.create(user_task_def=udef, position=99, name="extra", type="STR", required=True)
    with rejected(second, InvalidArgument, "extra"):
        complete(second, SYSTEM, user_id="obiwan", results={"requestedItem": "comlink"})
    stale = UserTaskDef(pk=udef.pk, name=udef.name, version=udef.version + 1, created_at=udef.created_at)
    with django_assert_num_queries(1):
        services._def_fields(stale)
