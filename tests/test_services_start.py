"""start_user_task_run (DESIGN §3 "start run", §4 wf_run_id/callback_url rules)."""

import re

import pytest

from usertasks import services
from usertasks.actors import SYSTEM, Actor
from usertasks.exceptions import InvalidArgument, NotFound, PermissionDenied
from usertasks.models import UserTaskEvent, UserTaskRun, WfRun

pytestmark = pytest.mark.django_db

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def start(actor, **kwargs):
    kwargs.setdefault("user_task_def_name", "it-request")
    return services.start_user_task_run(actor=actor, **kwargs)


def counts():
    return UserTaskRun.objects.count(), WfRun.objects.count(), UserTaskEvent.objects.count()


@pytest.fixture
def nothing_created(it_request):
    """Asserts that the test's rejected call wrote no run, WfRun or event."""
    before = counts()
    yield
    assert counts() == before


# --- the new run --------------------------------------------------------------------------------


def test_a_run_for_a_group_starts_unassigned_with_epoch_1_and_an_assigned_event(it_request, engine):
    run = start(engine, user_group="jedi-council")

    run.refresh_from_db()
    assert run.status == UserTaskRun.Status.UNASSIGNED
    assert (run.user_id, run.user_group) == (None, "jedi-council")
    assert run.epoch == 1
    assert run.results == {} and run.output is None and run.failure is None
    assert (run.user_task_def.name, run.user_task_def.version) == ("it-request", 0)
    events = list(run.events.all())
    assert [(e.type, e.actor, e.payload) for e in events] == [
        (
            "ASSIGNED",
            "wf-engine",
            {"old_user_id": None, "old_user_group": None, "new_user_id": None, "new_user_group": "jedi-council"},
        )
    ]


def test_a_run_for_a_user_starts_assigned(it_request, engine):
    run = start(engine, user_id="obiwan")

    run.refresh_from_db()
    assert run.status == UserTaskRun.Status.ASSIGNED
    assert (run.user_id, run.user_group, run.epoch) == ("obiwan", None, 1)
    assert run.events.get().payload == {
        "old_user_id": None, "old_user_group": None, "new_user_id": "obiwan", "new_user_group": None,
    }


def test_a_run_for_a_user_and_a_group_is_assigned_and_keeps_both(it_request, engine):
    run = start(engine, user_id="obiwan", user_group="jedi-council")

    run.refresh_from_db()
    assert (run.status, run.user_id, run.user_group) == ("ASSIGNED", "obiwan", "jedi-council")
    event = run.events.get()
    assert event.type == "ASSIGNED"
    assert (event.payload["new_user_id"], event.payload["new_user_group"]) == ("obiwan", "jedi-council")


def test_the_first_event_is_always_assigned_with_old_values_null(it_request, engine):
    run = start(engine, user_group="jedi-council")
    services.add_comment(run_id=run.run_id, user_id="obiwan", comment="hello", actor=engine)

    first = run.events.order_by("id").first()
    assert first.type == "ASSIGNED"
    assert first.payload["old_user_id"] is None and first.payload["old_user_group"] is None


def test_ids_are_generated_as_32_hex(it_request, engine):
    run = start(engine, user_group="jedi-council")

    assert HEX32.match(run.wf_run_id)
    assert HEX32.match(run.user_task_guid)


def test_notes_and_cancellation_exception_name_are_stored(it_request, engine):
    run = start(engine, user_group="jedi-council", notes="Lightsaber lost", on_cancellation_exception_name="task-cancelled")

    run.refresh_from_db()
    assert run.notes == "Lightsaber lost"
    assert run.on_cancellation_exception_name == "task-cancelled"


def test_a_blank_cancellation_exception_name_is_invalid(nothing_created, engine):
    with pytest.raises(InvalidArgument, match="on_cancellation_exception_name must not be blank"):
        start(engine, user_group="jedi-council", on_cancellation_exception_name=" ")


# --- which definition ----------------------------------------------------------------------------


def test_the_latest_version_is_used_by_default(it_request, engine):
    services.put_user_task_def(name="it-request", description="v1", fields=[], actor=SYSTEM)

    run = start(engine, user_group="jedi-council")

    assert run.user_task_def.version == 1


def test_an_explicit_version_is_honoured(it_request, engine):
    services.put_user_task_def(name="it-request", description="v1", fields=[], actor=SYSTEM)

    run = start(engine, user_group="jedi-council", user_task_def_version=0)

    assert run.user_task_def.version == 0
    assert run.user_task_def.pk == it_request.pk


def test_an_unknown_def_name_is_not_found(nothing_created, engine):
    with pytest.raises(NotFound, match="UserTaskDef no-such-task not found") as excinfo:
        start(engine, user_task_def_name="no-such-task", user_group="jedi-council")

    assert excinfo.value.code == "NOT_FOUND"


def test_an_unknown_version_is_not_found(nothing_created, engine):
    with pytest.raises(NotFound, match="UserTaskDef it-request version 7 not found"):
        start(engine, user_group="jedi-council", user_task_def_version=7)


@pytest.mark.parametrize("version", [-1, "0", 1.0, True])
def test_a_malformed_version_is_invalid(nothing_created, engine, version):
    with pytest.raises(InvalidArgument, match="user_task_def_version must be an integer"):
        start(engine, user_group="jedi-council", user_task_def_version=version)


@pytest.mark.parametrize("name", [None, "", "   "])
def test_a_missing_def_name_is_invalid(nothing_created, engine, name):
    with pytest.raises(InvalidArgument, match="user_task_def_name is required"):
        start(engine, user_task_def_name=name, user_group="jedi-council")


# --- owner arguments ----------------------------------------------------------------------------


def test_neither_user_id_nor_group_is_invalid(nothing_created, engine):
    with pytest.raises(InvalidArgument, match="needs a user_id or a user_group"):
        start(engine)


@pytest.mark.parametrize(
    "owner, fragment",
    [
        ({"user_id": ""}, "user_id must not be blank"),
        ({"user_id": "  "}, "user_id must not be blank"),
        ({"user_group": ""}, "user_group must not be blank"),
        ({"user_id": "obiwan", "user_group": " "}, "user_group must not be blank"),
        ({"user_id": " ", "user_group": "jedi-council"}, "user_id must not be blank"),
        ({"user_id": 7}, "user_id must be a string"),
        ({"user_group": ["jedi-council"]}, "user_group must be a string"),
        ({"user_id": "x" * 257}, "user_id must be at most 256 characters"),
    ],
)
def test_a_blank_or_malformed_owner_is_invalid(nothing_created, engine, owner, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        start(engine, **owner)


# --- wf_run_id and callback_url ---------------------------------------------------------------


def test_a_given_wf_run_id_is_created_with_its_callback_url(it_request, engine):
    run = start(engine, user_group="jedi-council", wf_run_id="wf-42_a", callback_url="https://engine.example/cb")

    assert run.wf_run_id == "wf-42_a"
    assert WfRun.objects.get(pk="wf-42_a").callback_url == "https://engine.example/cb"


def test_later_runs_may_reuse_a_wf_run_id_repeating_or_omitting_its_callback_url(it_request, engine):
    first = start(engine, user_group="jedi-council", wf_run_id="wf-1", callback_url="https://engine.example/cb")
    second = start(engine, user_group="jedi-council", wf_run_id="wf-1", callback_url="https://engine.example/cb")
    third = start(engine, user_id="obiwan", wf_run_id="wf-1")

    assert first.wf_run_id == second.wf_run_id == third.wf_run_id == "wf-1"
    assert len({first.user_task_guid, second.user_task_guid, third.user_task_guid}) == 3
    assert WfRun.objects.count() == 1
    assert WfRun.objects.get().callback_url == "https://engine.example/cb"


def test_a_different_callback_url_for_an_existing_wf_run_is_invalid(it_request, engine):
    start(engine, user_group="jedi-council", wf_run_id="wf-1", callback_url="https://engine.example/cb")
    before = counts()

    with pytest.raises(InvalidArgument, match="WfRun wf-1 already has a different callback_url"):
        start(engine, user_group="jedi-council", wf_run_id="wf-1", callback_url="https://other.example/cb")

    assert counts() == before
    assert WfRun.objects.get().callback_url == "https://engine.example/cb"


def test_a_callback_url_for_a_wf_run_created_without_one_is_invalid(it_request, engine):
    """Code's reading of §4: the first run fixes the callback_url, and 'none' is a value too."""
    start(engine, user_group="jedi-council", wf_run_id="wf-1")
    before = counts()

    with pytest.raises(InvalidArgument, match="different callback_url"):
        start(engine, user_group="jedi-council", wf_run_id="wf-1", callback_url="https://engine.example/cb")

    assert counts() == before


@pytest.mark.parametrize("wf_run_id", ["", "has space", "a/b", "wf.1", "wf\n", "x" * 129, 42])
def test_a_malformed_wf_run_id_is_invalid(nothing_created, engine, wf_run_id):
    with pytest.raises(InvalidArgument, match="wf_run_id must be 1–128 characters"):
        start(engine, user_group="jedi-council", wf_run_id=wf_run_id)


@pytest.mark.parametrize(
    "url",
    ["ftp://engine.example/cb", "engine.example/cb", "", "http://", "https://engine.example/c b", "https://e.example/cb\n", 5],
)
def test_a_malformed_callback_url_is_invalid(nothing_created, engine, url):
    with pytest.raises(InvalidArgument, match="callback_url must be an http:// or https:// URL"):
        start(engine, user_group="jedi-council", callback_url=url)


# --- permission and order of checks -------------------------------------------------------------


def test_a_plain_user_may_not_start_a_run(nothing_created, obiwan):
    with pytest.raises(PermissionDenied, match="obiwan may not start user task runs") as excinfo:
        start(obiwan, user_id="obiwan", user_group="jedi-council")

    assert excinfo.value.code == "PERMISSION_DENIED"


def test_a_user_with_the_add_permission_may_start_a_run(it_request):
    starter = Actor(name="dispatcher", permissions=frozenset({"usertasks.add_usertaskrun"}))

    run = start(starter, user_group="jedi-council")

    assert run.status == "UNASSIGNED"
    assert run.events.get().actor == "dispatcher"


def test_malformed_arguments_are_reported_before_permission(nothing_created, obiwan):
    with pytest.raises(InvalidArgument):
        start(obiwan)


def test_an_unknown_def_is_reported_before_permission(nothing_created, obiwan):
    with pytest.raises(NotFound):
        start(obiwan, user_task_def_name="no-such-task", user_group="jedi-council")
