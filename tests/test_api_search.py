"""GET /api/v1/user-task-runs: six ANDed filters, inclusive time bounds, keyset bookmarks, and
every malformed query answered with INVALID_ARGUMENT."""

from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from tests.test_api_support import api, api_users, assert_error, tokens  # noqa: F401

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def _guids(response):
    assert response.status_code == 200, response.content
    return [r["user_task_guid"] for r in response.json()["results"]]


@pytest.fixture
def runs(start_run, funds_def):
    """Six runs, one a day from T0: (day, def, user, group, status)."""
    plan = [
        ("it-request", "obiwan", "jedi-council"),
        ("it-request", None, "jedi-council"),
        ("approve-funds-for-mission", "obiwan", "jedi-council"),
        ("it-request", "mace", "jedi-temple"),
        ("it-request", "obiwan", "jedi-council"),
        ("it-request", "obiwan", None),
    ]
    made = []
    for day, (def_name, user_id, group) in enumerate(plan):
        with time_machine.travel(T0 + timedelta(days=day), tick=False):
            made.append(start_run(def_name=def_name, user_id=user_id, user_group=group))
    return made


def test_search_returns_ids_in_creation_order(api, runs):
    response = api.get("/user-task-runs", {"user_task_def_name": "it-request"})
    assert response.json()["bookmark"] is None
    assert response.json()["results"][0] == {"wf_run_id": runs[0].wf_run_id, "user_task_guid": runs[0].user_task_guid}
    assert _guids(response) == [runs[i].user_task_guid for i in (0, 1, 3, 4, 5)]


def test_search_filters_are_anded(api, runs):
    query = {"status": "ASSIGNED", "user_task_def_name": "it-request", "user_id": "obiwan", "user_group": "jedi-council"}
    assert _guids(api.get("/user-task-runs", query)) == [runs[0].user_task_guid, runs[4].user_task_guid]
    assert _guids(api.get("/user-task-runs", {"status": "UNASSIGNED"})) == [runs[1].user_task_guid]
    assert _guids(api.get("/user-task-runs", {"user_group": "jedi-temple"})) == [runs[3].user_task_guid]
    assert _guids(api.get("/user-task-runs", {"status": "DONE"})) == []


def test_search_time_bounds_are_inclusive(api, runs):
    query = {"user_id": "obiwan", "earliest_start": (T0 + timedelta(days=2)).isoformat(),
             "latest_start": (T0 + timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert _guids(api.get("/user-task-runs", query)) == [runs[2].user_task_guid, runs[4].user_task_guid]


def test_search_the_seed_guide_way_last_week_but_not_last_day(api, runs):
    now = T0 + timedelta(days=5, hours=12)
    query = {"user_id": "obiwan", "user_group": "jedi-council", "user_task_def_name": "it-request",
             "status": "ASSIGNED", "earliest_start": (now - timedelta(days=7)).isoformat(),
             "latest_start": (now - timedelta(hours=24)).isoformat()}
    assert _guids(api.get("/user-task-runs", query)) == [runs[0].user_task_guid, runs[4].user_task_guid]


def test_search_pages_with_bookmarks(api, runs):
    seen, bookmark, pages = [], None, 0
    while True:
        query = {"user_task_def_name": "it-request", "limit": 2, **({"bookmark": bookmark} if bookmark else {})}
        body = api.get("/user-task-runs", query).json()
        seen += [r["user_task_guid"] for r in body["results"]]
        pages += 1
        bookmark = body["bookmark"]
        if bookmark is None:
            break
    assert pages == 3
    assert seen == [runs[i].user_task_guid for i in (0, 1, 3, 4, 5)]


def test_search_as_plain_user_sees_only_visible_runs(api, runs):
    assert _guids(api.get("/user-task-runs", {"user_task_def_name": "it-request"}, as_="mace")) == [runs[3].user_task_guid]
    # yoda sees jedi-council's runs, not obiwan's group-less one
    assert _guids(api.get("/user-task-runs", {"user_id": "obiwan"}, as_="yoda")) == [
        runs[0].user_task_guid, runs[2].user_task_guid, runs[4].user_task_guid]


@pytest.mark.parametrize("query,words", [
    ({}, "at least one of"),
    ({"earliest_start": "2026-01-01T00:00:00Z"}, "at least one of"),
    ({"status": "OPEN"}, "status"),
    ({"status": "done"}, "status"),
    ({"status": "DONE", "earliest_start": "last week"}, "earliest_start"),
    ({"status": "DONE", "latest_start": "2026-13-01"}, "latest_start"),
    ({"status": "DONE", "limit": 0}, "limit"),
    ({"status": "DONE", "limit": 1001}, "limit"),
    ({"status": "DONE", "limit": "ten"}, "limit"),
    ({"status": "DONE", "bookmark": "not-a-bookmark"}, "bookmark"),
    ({"status": "DONE", "bookmark": "WyIyMDI2Il0:forged:signature"}, "bookmark"),
    ({"stauts": "DONE"}, "stauts"),
])
def test_search_with_bad_query_is_invalid_argument(api, runs, query, words):
    assert words in assert_error(api.get("/user-task-runs", query), 400, "INVALID_ARGUMENT")


def test_tampered_bookmark_is_refused(api, runs):
    bookmark = api.get("/user-task-runs", {"user_task_def_name": "it-request", "limit": 1}).json()["bookmark"]
    tampered = bookmark[:-2] + ("AA" if not bookmark.endswith("AA") else "BB")
    assert_error(api.get("/user-task-runs", {"status": "ASSIGNED", "bookmark": tampered}), 400, "INVALID_ARGUMENT")


def test_limit_bounds_are_accepted(api, runs):
    assert len(_guids(api.get("/user-task-runs", {"user_id": "obiwan", "limit": 1}))) == 1
    assert len(_guids(api.get("/user-task-runs", {"user_id": "obiwan", "limit": 1000}))) == 4


def test_search_uses_a_constant_number_of_queries(api, runs, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        api.get("/user-task-runs", {"user_task_def_name": "it-request", "limit": 1000})


def test_time_bounds_with_unusual_offsets_are_compared_in_utc(api, runs):
    # +21:42 is valid ISO 8601 but beyond what PostgreSQL accepts as an offset: it is converted.
    query = {"user_id": "obiwan", "earliest_start": "2026-11-23T06:42:00+21:42"}  # = T0 + 2 days, in UTC
    assert _guids(api.get("/user-task-runs", query)) == [runs[i].user_task_guid for i in (2, 4, 5)]


@pytest.mark.parametrize("bound", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_time_bounds_beyond_the_calendar_are_invalid_argument(api, runs, bound):
    assert "out of range" in assert_error(api.get("/user-task-runs", {"status": "DONE", "earliest_start": bound}),
                                          400, "INVALID_ARGUMENT")
