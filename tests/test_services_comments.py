"""add_comment / edit_comment / delete_comment (DESIGN §3 "comments") and how they are listed."""

import pytest

from tests.conftest import ADMIN, rejected, snapshot
from usertasks import services
from usertasks.actors import SYSTEM
from usertasks.exceptions import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from usertasks.selectors import comments_from_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(start_run):
    """A run held by obiwan within jedi-council."""
    return start_run(user_id="obiwan", user_group="jedi-council")


@pytest.fixture
def commented(run, obiwan):
    """The run with comment 1 by obiwan."""
    add(run, obiwan, user_id="obiwan", comment="Needed before the next mission.")
    return run


def add(run, actor, **kwargs):
    return services.add_comment(run_id=run.run_id, actor=actor, **kwargs)


def edit(run, actor, **kwargs):
    return services.edit_comment(run_id=run.run_id, actor=actor, **kwargs)


def delete(run, actor, **kwargs):
    return services.delete_comment(run_id=run.run_id, actor=actor, **kwargs)


def comments(run):
    return comments_from_events(list(run.events.order_by("id")))


def last_event(run):
    return run.events.order_by("-id").first()


# --- add ----------------------------------------------------------------------------------------


def test_comment_ids_are_1_2_3_per_run(run, start_run, obiwan, yoda):
    other = start_run(user_group="jedi-council")

    ids = [add(run, obiwan, user_id="obiwan", comment="one")[1],
           add(run, yoda, user_id="yoda", comment="two")[1],
           add(other, yoda, user_id="yoda", comment="elsewhere")[1],
           add(run, obiwan, user_id="obiwan", comment="three")[1]]

    assert ids == [1, 2, 1, 3]
    assert [(c["user_comment_id"], c["user_id"], c["comment"]) for c in comments(run)] == [
        (1, "obiwan", "one"), (2, "yoda", "two"), (3, "obiwan", "three"),
    ]


def test_adding_records_a_comment_added_event_and_changes_nothing_else(run, obiwan):
    before = snapshot(run)[:-1]

    returned, comment_id = add(run, obiwan, user_id="obiwan", comment="On it.")

    assert returned.pk == run.pk and comment_id == 1
    assert snapshot(run)[:-1] == before
    event = last_event(run)
    assert (event.type, event.actor) == ("COMMENT_ADDED", "obiwan")
    assert event.payload == {"user_comment_id": 1, "user_id": "obiwan", "comment": "On it."}


def test_ids_keep_counting_after_a_deletion(commented, obiwan):
    delete(commented, obiwan, user_comment_id=1, user_id="obiwan")

    _, comment_id = add(commented, obiwan, user_id="obiwan", comment="again")

    assert comment_id == 2


@pytest.mark.parametrize(
    "comment, fragment",
    [("", "must not be blank"), ("  \n", "must not be blank"), (None, "comment is required"), (5, "comment is required")],
)
def test_a_blank_comment_is_invalid(run, obiwan, comment, fragment):
    with rejected(run, InvalidArgument, fragment):
        add(run, obiwan, user_id="obiwan", comment=comment)


@pytest.mark.parametrize("user_id", [None, "", " "])
def test_a_blank_user_id_is_invalid(run, engine, user_id):
    with rejected(run, InvalidArgument, "user_id"):
        add(run, engine, user_id=user_id, comment="hello")


def test_a_plain_user_may_not_comment_as_someone_else(run, yoda):
    with rejected(run, PermissionDenied, "yoda may act only as themselves, not as obiwan"):
        add(run, yoda, user_id="obiwan", comment="forged")


def test_an_engine_may_comment_for_any_user(run, engine):
    add(run, engine, user_id="yoda", comment="from the workflow")

    event = last_event(run)
    assert (event.actor, event.payload["user_id"]) == ("wf-engine", "yoda")


def test_a_user_of_another_group_gets_not_found(run, mace):
    with rejected(run, NotFound):
        add(run, mace, user_id="mace", comment="hello")


def test_commenting_on_an_unknown_run_is_not_found(it_request, engine):
    with pytest.raises(NotFound):
        services.add_comment(run_id=("wf-x", "abc"), user_id="obiwan", comment="hi", actor=engine)


@pytest.mark.parametrize("final", ["complete", "cancel"])
def test_comments_are_allowed_in_any_status(commented, obiwan, final):
    if final == "complete":
        services.complete_user_task_run(run_id=commented.run_id, user_id="obiwan", results={"requestedItem": "x"}, actor=SYSTEM)
    else:
        services.cancel_user_task_run(run_id=commented.run_id, actor=SYSTEM)

    add(commented, obiwan, user_id="obiwan", comment="after the fact")
    edit(commented, obiwan, user_comment_id=1, user_id="obiwan", comment="edited after the fact")
    delete(commented, obiwan, user_comment_id=2, user_id="obiwan")

    commented.refresh_from_db()
    assert commented.status in ("DONE", "CANCELLED")
    assert [(c["comment"], c["deleted"]) for c in comments(commented)] == [("edited after the fact", False), (None, True)]


def test_comments_are_allowed_on_an_unassigned_run_by_a_group_member(start_run, yoda):
    run = start_run(user_group="jedi-council")

    _, comment_id = add(run, yoda, user_id="yoda", comment="I can take it")

    assert comment_id == 1


# --- edit ---------------------------------------------------------------------------------------


def test_the_author_edits_their_comment(commented, obiwan):
    edit(commented, obiwan, user_comment_id=1, user_id="obiwan", comment="Needed by Friday.")

    event = last_event(commented)
    assert (event.type, event.actor) == ("COMMENT_EDITED", "obiwan")
    assert event.payload == {"user_comment_id": 1, "user_id": "obiwan", "comment": "Needed by Friday."}
    assert comments(commented) == [
        {"user_comment_id": 1, "user_id": "obiwan", "comment": "Needed by Friday.", "deleted": False}
    ]


def test_another_user_may_not_edit_a_comment(commented, yoda):
    with rejected(commented, PermissionDenied, "only obiwan, who wrote this comment, or an admin may change it"):
        edit(commented, yoda, user_comment_id=1, user_id="yoda", comment="hijacked")


def test_another_user_may_not_edit_by_claiming_to_be_the_author(commented, yoda):
    with rejected(commented, PermissionDenied, "yoda may act only as themselves"):
        edit(commented, yoda, user_comment_id=1, user_id="obiwan", comment="hijacked")


@pytest.mark.parametrize("actor_fixture, user_id", [("engine", "yoda"), ("admin", "admin")])
def test_act_for_others_and_admins_may_edit_anyones_comment(request, commented, actor_fixture, user_id):
    actor = ADMIN if actor_fixture == "admin" else request.getfixturevalue(actor_fixture)

    edit(commented, actor, user_comment_id=1, user_id=user_id, comment="moderated")

    assert comments(commented)[0]["comment"] == "moderated"
    assert comments(commented)[0]["user_id"] == "obiwan"  # still obiwan's comment
    assert last_event(commented).actor == actor.name


def test_editing_an_unknown_comment_is_not_found(commented, obiwan):
    with rejected(commented, NotFound, "comment 2 not found"):
        edit(commented, obiwan, user_comment_id=2, user_id="obiwan", comment="x")


def test_editing_a_deleted_comment_is_a_failed_precondition(commented, obiwan):
    delete(commented, obiwan, user_comment_id=1, user_id="obiwan")

    with rejected(commented, FailedPrecondition, "comment 1 was deleted"):
        edit(commented, obiwan, user_comment_id=1, user_id="obiwan", comment="resurrected")


@pytest.mark.parametrize("comment", ["", "   ", None])
def test_editing_to_a_blank_comment_is_invalid(commented, obiwan, comment):
    with rejected(commented, InvalidArgument):
        edit(commented, obiwan, user_comment_id=1, user_id="obiwan", comment=comment)


@pytest.mark.parametrize("comment_id", [0, -1, "1", None, True, 1.0])
def test_a_malformed_comment_id_is_invalid(commented, obiwan, comment_id):
    with rejected(commented, InvalidArgument, "user_comment_id must be a positive integer"):
        edit(commented, obiwan, user_comment_id=comment_id, user_id="obiwan", comment="x")


def test_an_edit_by_a_user_of_another_group_is_not_found(commented, mace):
    with rejected(commented, NotFound):
        edit(commented, mace, user_comment_id=1, user_id="mace", comment="x")


# --- delete -------------------------------------------------------------------------------------


def test_the_author_deletes_their_comment_logically(commented, obiwan):
    delete(commented, obiwan, user_comment_id=1, user_id="obiwan")

    event = last_event(commented)
    assert (event.type, event.actor) == ("COMMENT_DELETED", "obiwan")
    assert event.payload == {"user_comment_id": 1, "user_id": "obiwan"}
    assert comments(commented) == [{"user_comment_id": 1, "user_id": "obiwan", "comment": None, "deleted": True}]
    # The history stays in the events.
    assert [e.type for e in commented.events.all()] == ["ASSIGNED", "COMMENT_ADDED", "COMMENT_DELETED"]
    assert commented.events.get(type="COMMENT_ADDED").payload["comment"] == "Needed before the next mission."


def test_deleting_twice_is_a_failed_precondition(commented, obiwan):
    delete(commented, obiwan, user_comment_id=1, user_id="obiwan")

    with rejected(commented, FailedPrecondition, "comment 1 was already deleted"):
        delete(commented, obiwan, user_comment_id=1, user_id="obiwan")


def test_another_user_may_not_delete_a_comment(commented, yoda):
    with rejected(commented, PermissionDenied):
        delete(commented, yoda, user_comment_id=1, user_id="yoda")


def test_an_admin_may_delete_anyones_comment(commented):
    delete(commented, ADMIN, user_comment_id=1, user_id="admin")

    assert comments(commented)[0]["deleted"] is True


def test_deleting_an_unknown_comment_is_not_found(commented, obiwan):
    with rejected(commented, NotFound, "comment 9 not found"):
        delete(commented, obiwan, user_comment_id=9, user_id="obiwan")


@pytest.mark.parametrize("user_id", [None, ""])
def test_deleting_with_a_blank_user_id_is_invalid(commented, obiwan, user_id):
    with rejected(commented, InvalidArgument):
        delete(commented, obiwan, user_comment_id=1, user_id=user_id)


# --- order of checks ----------------------------------------------------------------------------


def test_malformed_arguments_come_before_not_found(it_request, engine):
    with pytest.raises(InvalidArgument):
        services.edit_comment(run_id=("wf-x", "abc"), user_comment_id=1, user_id="obiwan", comment="", actor=engine)


def test_an_unknown_comment_comes_before_permission(commented, yoda):
    with rejected(commented, NotFound):
        edit(commented, yoda, user_comment_id=7, user_id="yoda", comment="x")


def test_permission_comes_before_the_deleted_state(commented, obiwan, yoda):
    delete(commented, obiwan, user_comment_id=1, user_id="obiwan")

    with rejected(commented, PermissionDenied):
        delete(commented, yoda, user_comment_id=1, user_id="yoda")


# --- listing ------------------------------------------------------------------------------------


def test_the_listing_replays_edits_and_deletions_in_order(run, obiwan, yoda):
    add(run, obiwan, user_id="obiwan", comment="first")
    add(run, yoda, user_id="yoda", comment="second")
    edit(run, obiwan, user_comment_id=1, user_id="obiwan", comment="first, edited")
    edit(run, obiwan, user_comment_id=1, user_id="obiwan", comment="first, edited twice")
    delete(run, yoda, user_comment_id=2, user_id="yoda")

    assert comments(run) == [
        {"user_comment_id": 1, "user_id": "obiwan", "comment": "first, edited twice", "deleted": False},
        {"user_comment_id": 2, "user_id": "yoda", "comment": None, "deleted": True},
    ]
