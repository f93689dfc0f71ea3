"""Races on one row (DESIGN §3 "the run row locked before any decision", §10 "Races").

Real threads, each with its own PostgreSQL connection, released together by a barrier. SQLite
has no row locks (select_for_update is a no-op there), so these run only in the PostgreSQL leg.
"""

import threading

import pytest
from django.db import connection

from tests.conftest import ENGINE, IT_REQUEST_FIELDS
from usertasks import services
from usertasks.actors import SYSTEM, Actor
from usertasks.exceptions import FailedPrecondition
from usertasks.models import UserTaskDef, UserTaskEvent, UserTaskRun

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

N = 20


def race(work, n: int = N) -> list[tuple[str, object]]:
    """Call work(i) in n threads that start together; ("ok", value) or ("error", exception) each."""
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def body(i: int) -> None:
        try:
            connection.ensure_connection()  # connect first, so the barrier lines up the calls themselves
            barrier.wait(timeout=60)
            outcomes[i] = ("ok", work(i))
        except BaseException as exc:  # noqa: BLE001 — every outcome is asserted on below
            outcomes[i] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,), name=f"race-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return outcomes


def split(outcomes):
    wins = [(i, value) for i, (kind, value) in enumerate(outcomes) if kind == "ok"]
    errors = [value for kind, value in outcomes if kind == "error"]
    return wins, errors


def assert_only_failed_precondition(errors):
    unexpected = [e for e in errors if not isinstance(e, FailedPrecondition)]
    assert not unexpected, f"expected FAILED_PRECONDITION only, got {unexpected!r}"


def kinds(run) -> list[str]:
    return list(UserTaskEvent.objects.filter(user_task_run=run).order_by("id").values_list("type", flat=True))


@pytest.fixture
def it_request_committed(transactional_db):
    udef, _ = services.put_user_task_def(name="it-request", fields=IT_REQUEST_FIELDS, actor=SYSTEM)
    return udef


def start(**kwargs) -> UserTaskRun:
    return services.start_user_task_run(user_task_def_name="it-request", actor=SYSTEM, **kwargs)


def test_the_database_is_postgresql():
    assert connection.vendor == "postgresql"


def test_twenty_concurrent_completes_of_one_run_exactly_one_succeeds(it_request_committed):
    run = start(user_id="obiwan", user_group="jedi-council")
    outcomes = race(
        lambda i: services.complete_user_task_run(
            run_id=run.run_id, user_id="obiwan", results={"requestedItem": f"item {i}"}, actor=ENGINE
        )
    )
    wins, errors = split(outcomes)
    assert len(wins) == 1, f"{len(wins)} completes succeeded"
    assert len(errors) == N - 1
    assert_only_failed_precondition(errors)
    assert all("DONE" in e.message for e in errors)
    (winner, _), = wins
    run.refresh_from_db()
    assert run.status == "DONE"
    assert run.output == run.results == {"requestedItem": f"item {winner}"}
    assert kinds(run) == ["ASSIGNED", "COMPLETED"]


def test_twenty_concurrent_completes_as_different_users_exactly_one_reassigns_and_completes(it_request_committed):
    run = start(user_id="obiwan", user_group="jedi-council")
    outcomes = race(
        lambda i: services.complete_user_task_run(
            run_id=run.run_id, user_id=f"padawan-{i}", results={"requestedItem": "x"}, actor=ENGINE
        )
    )
    wins, errors = split(outcomes)
    assert len(wins) == 1
    assert_only_failed_precondition(errors)
    (winner, _), = wins
    run.refresh_from_db()
    assert (run.status, run.user_id, run.user_group, run.epoch) == ("DONE", f"padawan-{winner}", "jedi-council", 2)
    assert kinds(run) == ["ASSIGNED", "ASSIGNED", "COMPLETED"]


def test_twenty_members_claiming_one_unassigned_run_exactly_one_gets_it(it_request_committed):
    run = start(user_group="jedi-council")
    members = [Actor(name=f"padawan-{i}", groups=frozenset({"jedi-council"})) for i in range(N)]
    outcomes = race(lambda i: services.claim_user_task_run(run_id=run.run_id, actor=members[i]))
    wins, errors = split(outcomes)
    assert len(wins) == 1, f"{len(wins)} claims succeeded"
    assert len(errors) == N - 1
    assert_only_failed_precondition(errors)
    (winner, _), = wins
    run.refresh_from_db()
    assert (run.status, run.user_id, run.user_group, run.epoch) == ("ASSIGNED", f"padawan-{winner}", "jedi-council", 2)
    assert all(f"padawan-{winner}" in e.message for e in errors), "the loser is told who holds the run"
    assert kinds(run) == ["ASSIGNED", "ASSIGNED"]
    claimed = UserTaskEvent.objects.filter(user_task_run=run).order_by("id").last()
    assert claimed.actor == f"padawan-{winner}"
    assert claimed.payload == {"old_user_id": None, "old_user_group": "jedi-council",
                               "new_user_id": f"padawan-{winner}", "new_user_group": "jedi-council"}


def test_twenty_concurrent_assigns_without_override_exactly_one_succeeds(it_request_committed):
    run = start(user_group="jedi-council")
    outcomes = race(
        lambda i: services.assign_user_task_run(
            run_id=run.run_id, user_id=f"padawan-{i}", user_group="jedi-council", actor=ENGINE
        )
    )
    wins, errors = split(outcomes)
    assert len(wins) == 1
    assert_only_failed_precondition(errors)
    run.refresh_from_db()
    assert run.epoch == 2 and kinds(run) == ["ASSIGNED", "ASSIGNED"]


def test_completes_racing_cancels_exactly_one_terminal_event(it_request_committed):
    run = start(user_id="obiwan", user_group="jedi-council")

    def work(i):
        if i % 2:
            return services.cancel_user_task_run(run_id=run.run_id, message=f"cancel {i}", actor=ENGINE)
        return services.complete_user_task_run(
            run_id=run.run_id, user_id="obiwan", results={"requestedItem": "x"}, actor=ENGINE
        )

    wins, errors = split(race(work))
    assert len(wins) == 1
    assert_only_failed_precondition(errors)
    run.refresh_from_db()
    (winner, _), = wins
    terminal = [k for k in kinds(run) if k in ("COMPLETED", "CANCELLED")]
    assert terminal == (["CANCELLED"] if winner % 2 else ["COMPLETED"])
    assert run.status == ("CANCELLED" if winner % 2 else "DONE")


def test_concurrent_saves_and_comments_are_all_kept(it_request_committed):
    """No lost or duplicated events under load: every call that may succeed does, in one order."""
    run = start(user_id="obiwan", user_group="jedi-council")

    def work(i):
        if i % 2:
            return services.add_comment(run_id=run.run_id, user_id="obiwan", comment=f"comment {i}", actor=ENGINE)
        return services.save_user_task_run_progress(
            run_id=run.run_id, user_id="obiwan", results={"justification": f"draft {i}"}, actor=ENGINE
        )

    wins, errors = split(race(work))
    assert errors == []
    events = list(UserTaskEvent.objects.filter(user_task_run=run).order_by("id"))
    assert len(events) == 1 + N
    # Comment ids are 1..10 with no gaps or duplicates although ten threads numbered them at once.
    ids = [e.payload["user_comment_id"] for e in events if e.type == "COMMENT_ADDED"]
    assert ids == list(range(1, N // 2 + 1))
    run.refresh_from_db()
    last_saved = [e for e in events if e.type == "SAVED"][-1]
    assert run.results == last_saved.payload["results"]


FIELD = {"name": "requestedItem", "type": "STR", "required": True}


def test_twenty_concurrent_changes_to_one_def_get_distinct_contiguous_versions(transactional_db):
    services.put_user_task_def(name="race-def", fields=[FIELD], actor=SYSTEM)
    outcomes = race(
        lambda i: services.put_user_task_def(
            name="race-def", description=f"change {i}", fields=[{**FIELD, "display_name": f"Item {i}"}], actor=ENGINE
        )
    )
    wins, errors = split(outcomes)
    assert errors == [], errors
    versions = sorted(udef.version for _, (udef, created) in wins)
    assert versions == list(range(1, N + 1))
    assert all(created for _, (_, created) in wins)
    stored = {d.version: d for d in UserTaskDef.objects.filter(name="race-def").prefetch_related("fields")}
    assert sorted(stored) == list(range(0, N + 1))
    for i, (udef, _) in wins:
        # Each caller got the version holding its own change, fields included.
        assert stored[udef.version].description == f"change {i}"
        assert [f.display_name for f in stored[udef.version].fields.all()] == [f"Item {i}"]


def test_twenty_concurrent_first_puts_of_a_new_def_start_at_version_zero(transactional_db):
    outcomes = race(lambda i: services.put_user_task_def(name="brand-new", description=f"take {i}", fields=[],
                                                         actor=ENGINE))
    wins, errors = split(outcomes)
    assert errors == [], errors
    assert sorted(udef.version for _, (udef, _) in wins) == list(range(N))


def test_twenty_concurrent_identical_puts_create_one_version(transactional_db):
    services.put_user_task_def(name="race-def", fields=[FIELD], actor=SYSTEM)
    outcomes = race(
        lambda i: services.put_user_task_def(name="race-def", description="the change", fields=[FIELD], actor=ENGINE)
    )
    wins, errors = split(outcomes)
    assert errors == [], errors
    assert {udef.version for _, (udef, _) in wins} == {1}
    assert sum(created for _, (_, created) in wins) == 1
    assert UserTaskDef.objects.filter(name="race-def").count() == 2
