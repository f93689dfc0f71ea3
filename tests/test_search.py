"""selectors.search_user_task_runs (DESIGN §3 "search", §7 visibility): filters, arguments, keyset pages."""

from datetime import datetime, timedelta, timezone
from itertools import combinations

import pytest
import time_machine
from django.core import signing

from tests.conftest import ADMIN, ENGINE, MACE, OBIWAN, YODA
from usertasks import selectors, services
from usertasks.actors import SYSTEM, Actor
from usertasks.exceptions import InvalidArgument
from usertasks.models import UserTaskRun
from usertasks.selectors import search_user_task_runs

FUNDS = "approve-funds-for-mission"
MANAGER = Actor(name="manager", groups=frozenset({"managers"}), permissions=frozenset({"usertasks.view_audit"}))
# Microseconds on purpose: inclusive bounds must hold to the microsecond.
T0 = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=timezone.utc)
EQUALITY_FILTERS = ("status", "user_task_def_name", "user_id", "user_group")


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def start_at(when: datetime, *, def_name: str = "it-request", user_id=None, user_group=None) -> UserTaskRun:
    with time_machine.travel(when, tick=False):
        return services.start_user_task_run(
            user_task_def_name=def_name, user_id=user_id, user_group=user_group, actor=SYSTEM
        )


RESULTS = {"it-request": {"requestedItem": "a lightsaber"}, FUNDS: {"amount": 10.5, "approved": True}}

# minute -> (def, user_id, user_group, what happens next). One run per minute, so minute = order.
DATASET = {
    0: ("it-request", "obiwan", "jedi-council", None),
    1: ("it-request", None, "jedi-council", None),
    2: (FUNDS, "yoda", "jedi-council", None),
    3: (FUNDS, None, "jedi-temple", None),
    4: ("it-request", "mace", None, "complete"),
    5: (FUNDS, "obiwan", None, "cancel"),
    6: ("it-request", "yoda", "jedi-temple", None),
    7: (FUNDS, None, "jedi-council", "complete as obiwan"),
    8: ("it-request", "mace", "jedi-temple", "cancel"),
    9: ("it-request", None, "jedi-temple", None),
}


@pytest.fixture
def dataset(it_request, funds_def) -> dict[int, UserTaskRun]:
    """Ten runs one minute apart in every status, two defs, several users and groups."""
    runs = {}
    for minute, (def_name, user_id, user_group, then) in DATASET.items():
        run = start_at(at(minute), def_name=def_name, user_id=user_id, user_group=user_group)
        if then == "complete":
            services.complete_user_task_run(run_id=run.run_id, user_id=user_id, results=RESULTS[def_name], actor=SYSTEM)
        elif then == "complete as obiwan":
            services.complete_user_task_run(run_id=run.run_id, user_id="obiwan", results=RESULTS[def_name], actor=SYSTEM)
        elif then == "cancel":
            services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM)
        run.refresh_from_db()
        runs[minute] = run
    return runs


def minutes(page, dataset) -> list[int]:
    by_pk = {run.pk: minute for minute, run in dataset.items()}
    return [by_pk[run.pk] for run in page.results]


def search(actor=ENGINE, **kwargs):
    return search_user_task_runs(actor=actor, **kwargs)


def all_pages(actor=ENGINE, *, limit=None, newest_first=False, **filters) -> list[int]:
    """Follow bookmarks to the end; every page but the last is full. Returns the pks in order."""
    pks, bookmark, pages = [], None, 0
    while True:
        page = search_user_task_runs(actor=actor, limit=limit, bookmark=bookmark, newest_first=newest_first, **filters)
        pages += 1
        assert pages < 10_000, "bookmarks never ran out"
        pks += [run.pk for run in page.results]
        if page.bookmark is None:
            return pks
        assert len(page.results) == (limit or 100), "a page before the last one is not full"
        bookmark = page.bookmark


def sees(actor: Actor, run: UserTaskRun) -> bool:
    """DESIGN §7, written out independently of the code under test."""
    if actor.is_superuser or actor.permissions & {
        "usertasks.act_for_others",
        "usertasks.view_audit",
        "usertasks.assign_usertaskrun",
        "usertasks.cancel_usertaskrun",
    }:
        return True
    return run.user_id == actor.name or (run.user_group is not None and run.user_group in actor.groups)


def oracle(runs, actor=ENGINE, *, earliest=None, latest=None, **equal) -> list[int]:
    """The pks search must return: every filter ANDed, inclusive time bounds, ordered by (time, pk)."""
    chosen = [
        run
        for run in runs
        if sees(actor, run)
        and all(getattr(run, name) == value for name, value in equal.items())
        and (earliest is None or run.scheduled_time >= earliest)
        and (latest is None or run.scheduled_time <= latest)
    ]
    return [run.pk for run in sorted(chosen, key=lambda r: (r.scheduled_time, r.pk))]


# --- each filter alone, written out by hand ---------------------------------------------------


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"status": "UNASSIGNED"}, [1, 3, 9]),
        ({"status": "ASSIGNED"}, [0, 2, 6]),
        ({"status": "DONE"}, [4, 7]),
        ({"status": "CANCELLED"}, [5, 8]),
        ({"user_task_def_name": FUNDS}, [2, 3, 5, 7]),
        ({"user_task_def_name": "it-request"}, [0, 1, 4, 6, 8, 9]),
        ({"user_task_def_name": "no-such-def"}, []),
        ({"user_id": "obiwan"}, [0, 5, 7]),
        ({"user_id": "mace"}, [4, 8]),
        ({"user_id": "qui-gon"}, []),
        ({"user_group": "jedi-council"}, [0, 1, 2, 7]),
        ({"user_group": "jedi-temple"}, [3, 6, 8, 9]),
    ],
)
def test_each_equality_filter_alone(dataset, filters, expected):
    page = search(**filters)
    assert minutes(page, dataset) == expected
    assert page.bookmark is None


def test_filters_are_anded(dataset):
    assert minutes(search(status="ASSIGNED", user_group="jedi-council"), dataset) == [0, 2]
    assert minutes(search(status="DONE", user_id="obiwan"), dataset) == [7]
    assert minutes(search(user_task_def_name=FUNDS, user_group="jedi-temple"), dataset) == [3]
    assert minutes(search(status="CANCELLED", user_task_def_name="it-request", user_id="mace", user_group="jedi-temple"), dataset) == [8]
    assert minutes(search(status="UNASSIGNED", user_id="obiwan"), dataset) == []


def test_time_bounds_with_a_filter_and_inclusive_to_the_microsecond(dataset):
    assert minutes(search(user_group="jedi-temple", earliest_start=at(6)), dataset) == [6, 8, 9]
    assert minutes(search(user_group="jedi-temple", latest_start=at(6)), dataset) == [3, 6]
    assert minutes(search(user_group="jedi-temple", earliest_start=at(6), latest_start=at(6)), dataset) == [6]
    one_us = timedelta(microseconds=1)
    assert minutes(search(user_group="jedi-temple", earliest_start=at(6) + one_us, latest_start=at(8)), dataset) == [8]
    assert minutes(search(user_group="jedi-temple", earliest_start=at(6), latest_start=at(8) - one_us), dataset) == [6]
    assert minutes(search(user_group="jedi-temple", earliest_start=at(9), latest_start=at(3)), dataset) == []


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_every_filter_combination_matches_the_oracle(dataset, size):
    """Every non-empty subset of the four equality filters, with and without each time bound,
    probing with the values of every run so that each combination has at least one hit."""
    runs = list(dataset.values())
    windows = [(None, None), (at(2), None), (None, at(6)), (at(2), at(6)), (at(7), at(7))]
    checked = 0
    for names in combinations(EQUALITY_FILTERS, size):
        for probe in runs:
            equal = {name: getattr(probe, name) for name in names}
            if None in equal.values():
                continue  # "no user" is not a filter value
            for earliest, latest in windows:
                got = [run.pk for run in search(earliest_start=earliest, latest_start=latest, **equal).results]
                assert got == oracle(runs, earliest=earliest, latest=latest, **equal), (equal, earliest, latest)
                checked += 1
    assert checked > 0


# --- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bounds",
    [
        {"earliest_start": at(0)},
        {"latest_start": at(9)},
        {"earliest_start": at(0), "latest_start": at(9)},
        {},
        {"status": "", "user_id": "", "earliest_start": at(0)},  # blank filters are absent filters
    ],
)
def test_search_needs_at_least_one_equality_filter(dataset, bounds):
    with pytest.raises(InvalidArgument) as err:
        search(**bounds)
    assert err.value.code == "INVALID_ARGUMENT"
    for name in EQUALITY_FILTERS:
        assert name in err.value.message


@pytest.mark.parametrize("status", ["OPEN", "assigned", "Done", "CANCELED", "DONE "])
def test_unknown_status_is_invalid_argument(dataset, status):
    with pytest.raises(InvalidArgument, match="status"):
        search(status=status)


@pytest.mark.parametrize(
    "text",
    [
        iso(at(2)),  # ...Z
        at(2).isoformat(),  # +00:00
        (at(2) + timedelta(hours=1)).replace(tzinfo=timezone(timedelta(hours=1))).isoformat(),  # same instant, +01:00
        (at(2) - timedelta(hours=5, minutes=30)).replace(tzinfo=timezone(-timedelta(hours=5, minutes=30))).isoformat(),
        (at(2) + timedelta(hours=20)).replace(tzinfo=timezone(timedelta(hours=20))).isoformat(),  # beyond ±15:59
        at(2).replace(tzinfo=None).isoformat(),  # naive is UTC
    ],
)
def test_iso_8601_strings_are_accepted_as_time_bounds(dataset, text):
    assert minutes(search(user_group="jedi-council", earliest_start=text), dataset) == [2, 7]
    assert minutes(search(user_group="jedi-council", latest_start=text), dataset) == [0, 1, 2]


@pytest.mark.parametrize(
    "bad",
    ["yesterday", "2026-13-01T00:00:00Z", "2026-01-05T25:00:00Z", "05/01/2026 09:00", "2026-01-05T09:00:00+25:00",
     "now", 12345, 1.5, ["2026-01-05T09:00:00Z"], True],
)
@pytest.mark.parametrize("bound", ["earliest_start", "latest_start"])
def test_a_time_that_is_not_iso_8601_is_invalid_argument(dataset, bound, bad):
    with pytest.raises(InvalidArgument) as err:
        search(user_group="jedi-council", **{bound: bad})
    assert bound in err.value.message


@pytest.mark.parametrize("value", [42, ["jedi-council"], {"x": 1}])
@pytest.mark.parametrize("name", EQUALITY_FILTERS)
def test_a_filter_that_is_not_a_string_is_invalid_argument(dataset, name, value):
    with pytest.raises(InvalidArgument):
        search(**{name: value})


@pytest.mark.parametrize("limit", [0, 1001, -1, "abc", 1.5, True, "1e3", "-1", "0", 10**12])
def test_limit_out_of_range_is_invalid_argument(dataset, limit):
    with pytest.raises(InvalidArgument, match="limit"):
        search(user_group="jedi-council", limit=limit)


def test_limit_bounds_one_and_a_thousand_are_accepted(dataset):
    page = search(user_group="jedi-council", limit=1)
    assert minutes(page, dataset) == [0]
    assert page.bookmark is not None
    page = search(user_group="jedi-council", limit=1000)
    assert minutes(page, dataset) == [0, 1, 2, 7]
    assert page.bookmark is None


def test_limit_defaults_to_100(it_request):
    runs = [start_at(at(i), user_group="padawans") for i in range(101)]
    first = search(user_group="padawans")
    assert [r.pk for r in first.results] == [r.pk for r in runs[:100]]
    assert first.bookmark is not None
    second = search(user_group="padawans", bookmark=first.bookmark)
    assert [r.pk for r in second.results] == [runs[100].pk]
    assert second.bookmark is None


# --- bookmarks --------------------------------------------------------------------------------


def test_bookmark_is_null_on_the_last_page(dataset):
    # Exactly a full page and nothing after it: no bookmark to an empty page.
    page = search(user_group="jedi-council", limit=4)
    assert len(page.results) == 4 and page.bookmark is None
    # Nothing at all.
    page = search(user_group="padawans")
    assert page.results == [] and page.bookmark is None
    # A short last page after a bookmark.
    first = search(user_group="jedi-council", limit=3)
    assert minutes(first, dataset) == [0, 1, 2] and first.bookmark
    last = search(user_group="jedi-council", limit=3, bookmark=first.bookmark)
    assert minutes(last, dataset) == [7] and last.bookmark is None


def _tampered(bookmark: str) -> list:
    flip = "A" if bookmark[-1] != "A" else "B"
    middle = len(bookmark) // 2
    swap = "x" if bookmark[middle] != "x" else "y"
    return [
        bookmark[:-1] + flip,  # signature changed
        bookmark[:middle] + swap + bookmark[middle + 1 :],  # payload changed
        bookmark[:-5],  # truncated
        bookmark + "x",
        bookmark.split(":")[0],  # payload without signature
        "x" + bookmark,
    ]


def _foreign() -> list:
    salt = getattr(selectors, "_BOOKMARK_SALT", "usertasks.search.bookmark")
    payload = [at(0).isoformat(), 1, 0]
    return [
        "abc",
        "null",
        "0",
        "eyJ0aW1lIjogIjIwMjYifQ",  # base64 of a JSON object
        signing.dumps(payload, salt=salt, key="not-this-servers-secret"),  # signed by someone else
        signing.dumps(payload, salt="another.purpose"),  # our key, issued for something else
        signing.dumps(payload),
    ]


def test_a_tampered_or_foreign_bookmark_is_invalid_argument(dataset):
    bookmark = search(user_group="jedi-council", limit=1).bookmark
    assert bookmark
    for bad in _tampered(bookmark) + _foreign() + [12345, ["a"], {"a": 1}]:
        with pytest.raises(InvalidArgument, match="bookmark"):
            search(user_group="jedi-council", limit=1, bookmark=bad)
    # The genuine one still works.
    assert minutes(search(user_group="jedi-council", limit=1, bookmark=bookmark), dataset) == [1]


def test_a_bookmark_of_one_order_is_refused_in_the_other(dataset):
    ascending = search(user_group="jedi-council", limit=1).bookmark
    descending = search(user_group="jedi-council", limit=1, newest_first=True).bookmark
    with pytest.raises(InvalidArgument, match="bookmark"):
        search(user_group="jedi-council", bookmark=ascending, newest_first=True)
    with pytest.raises(InvalidArgument, match="bookmark"):
        search(user_group="jedi-council", bookmark=descending)


def test_order_is_scheduled_time_then_id(it_request):
    # Created out of time order: later pks with earlier times, and ties at one instant.
    late = start_at(at(10), user_group="padawans")
    early = start_at(at(1), user_group="padawans")
    tie_a = start_at(at(5), user_group="padawans")
    tie_b = start_at(at(5), user_group="padawans")
    middle = start_at(at(3), user_group="padawans")
    assert [r.pk for r in search(user_group="padawans").results] == [early.pk, middle.pk, tie_a.pk, tie_b.pk, late.pk]
    assert [r.pk for r in search(user_group="padawans", newest_first=True).results] == [
        late.pk, tie_b.pk, tie_a.pk, middle.pk, early.pk,
    ]
    for limit in (1, 2, 3):
        assert all_pages(user_group="padawans", limit=limit) == [early.pk, middle.pk, tie_a.pk, tie_b.pk, late.pk]
        assert all_pages(user_group="padawans", limit=limit, newest_first=True) == [
            late.pk, tie_b.pk, tie_a.pk, middle.pk, early.pk,
        ]


@pytest.fixture
def same_instant_runs(it_request) -> list[int]:
    """250 runs started through the service at one frozen instant (identical scheduled_time)."""
    with time_machine.travel(at(30), tick=False):
        pks = [
            services.start_user_task_run(user_task_def_name="it-request", user_group="padawans", actor=SYSTEM).pk
            for _ in range(250)
        ]
    # Neighbours at other instants, same group, so the keyset must cross the tie both ways.
    before = start_at(at(29), user_group="padawans").pk
    after = start_at(at(31), user_group="padawans").pk
    assert UserTaskRun.objects.filter(pk__in=pks, scheduled_time=at(30)).count() == 250
    return [before, *sorted(pks), after]


def test_paging_through_250_runs_that_share_one_scheduled_time_returns_each_exactly_once(same_instant_runs):
    # One fixture for every page size: building 250 runs through the service is the slow part.
    for limit in (1, 7, 100, 249, 250, 251, 252, 1000):
        got = all_pages(user_group="padawans", limit=limit)
        assert got == same_instant_runs, limit
        assert len(set(got)) == len(got) == 252


def test_newest_first_paging_through_the_same_instant(same_instant_runs):
    for limit in (7, 100, 1000):
        assert all_pages(user_group="padawans", limit=limit, newest_first=True) == list(reversed(same_instant_runs))


def test_paging_with_filters_and_time_bounds_across_the_tie(same_instant_runs):
    # Complete every third run of the tie: paging by status skips them without losing any other.
    tie = same_instant_runs[1:-1]
    done = set(tie[::3])
    for pk in done:
        run = UserTaskRun.objects.get(pk=pk)
        services.complete_user_task_run(run_id=run.run_id, user_id="obiwan", results=RESULTS["it-request"], actor=SYSTEM)
    expect_open = [pk for pk in same_instant_runs if pk not in done]
    for limit in (7, 100):
        assert all_pages(status="UNASSIGNED", user_group="padawans", limit=limit) == expect_open
        assert all_pages(status="DONE", limit=limit) == sorted(done)
        assert all_pages(user_group="padawans", earliest_start=at(30), latest_start=at(30), limit=limit) == tie
        assert all_pages(status="DONE", user_id="obiwan", newest_first=True, limit=limit) == sorted(done, reverse=True)


def test_runs_started_while_paging_do_not_disturb_the_pages_already_handed_out(it_request):
    old = [start_at(at(i // 3), user_group="padawans").pk for i in range(30)]  # ties of three
    seen, bookmark = [], None
    for i in range(100):
        page = search(user_group="padawans", limit=4, bookmark=bookmark)
        seen += [r.pk for r in page.results]
        start_at(at(50 + i), user_group="padawans")  # later than everything so far
        start_at(at(0), user_group="padawans")  # at an instant already paged past
        if page.bookmark is None:
            break
        bookmark = page.bookmark
    assert len(seen) == len(set(seen)), "a run was returned twice"
    assert [pk for pk in seen if pk in set(old)] == old, "an old run was skipped or reordered"


# --- visibility -------------------------------------------------------------------------------

OBIWAN_FRIEND = Actor(name="qui-gon", groups=frozenset({"jedi-temple", "jedi-council"}))
ASSIGNER = Actor(name="windu", permissions=frozenset({"usertasks.assign_usertaskrun"}))


def test_a_plain_user_finds_only_runs_assigned_to_them_or_their_groups(dataset):
    # obiwan: his own runs (any group or none) and jedi-council's.
    assert minutes(search(OBIWAN, status="ASSIGNED"), dataset) == [0, 2]
    assert minutes(search(OBIWAN, user_id="obiwan"), dataset) == [0, 5, 7]
    assert minutes(search(OBIWAN, user_group="jedi-temple"), dataset) == []
    assert minutes(search(OBIWAN, user_id="yoda"), dataset) == [2]  # not yoda's jedi-temple run
    assert minutes(search(OBIWAN, user_id="mace"), dataset) == []
    assert minutes(search(OBIWAN, status="CANCELLED"), dataset) == [5]
    # mace: his own (4, 8) and jedi-temple's.
    assert minutes(search(MACE, user_task_def_name="it-request"), dataset) == [4, 6, 8, 9]
    assert minutes(search(MACE, user_id="obiwan"), dataset) == []


@pytest.mark.parametrize("actor", [ENGINE, ADMIN, MANAGER, ASSIGNER, OBIWAN, YODA, MACE, OBIWAN_FRIEND,
                                   Actor(name="nobody")], ids=lambda a: a.name)
def test_visibility_for_every_kind_of_actor_matches_design(dataset, actor):
    runs = list(dataset.values())
    for names in [("status",), ("user_task_def_name",), ("user_id",), ("user_group",), ("status", "user_group")]:
        for probe in runs:
            equal = {name: getattr(probe, name) for name in names}
            if None in equal.values():
                continue
            for limit in (2, 100):
                assert all_pages(actor, limit=limit, **equal) == oracle(runs, actor, **equal), (actor.name, equal)


def test_paging_a_plain_users_view_skips_invisible_runs_without_short_pages(dataset, it_request):
    # Many invisible runs between the visible ones must not produce short or empty middle pages.
    for i in range(40):
        start_at(at(20 + i), user_id="mace", user_group="jedi-temple")
        if i % 5 == 0:
            start_at(at(20 + i), user_id="obiwan", user_group="jedi-temple")
    got = all_pages(OBIWAN, status="ASSIGNED", limit=3)
    runs = list(UserTaskRun.objects.all())
    assert got == oracle(runs, OBIWAN, status="ASSIGNED")
    assert len(got) == 2 + 8


def test_paging_a_members_view_through_one_instant_mixing_own_runs_and_two_groups(it_request):
    """Each way of being visible (own run, group A, group B) interleaved at one scheduled_time."""
    owners = [("qui-gon", "jedi-temple"), (None, "jedi-council"), (None, "jedi-temple"), ("qui-gon", None),
              ("mace", "jedi-temple"), ("yoda", "padawans"), ("qui-gon", "padawans"), ("obiwan", "jedi-council")]
    with time_machine.travel(at(40), tick=False):
        for i in range(70):
            user_id, user_group = owners[i % len(owners)]
            services.start_user_task_run(
                user_task_def_name="it-request", user_id=user_id, user_group=user_group, actor=SYSTEM
            )
    runs = list(UserTaskRun.objects.all())
    for filters in ({"user_task_def_name": "it-request"}, {"status": "ASSIGNED"}, {"user_id": "qui-gon"},
                    {"user_group": "jedi-temple"}, {"user_group": "padawans"}):
        expected = oracle(runs, OBIWAN_FRIEND, **filters)
        for limit in (1, 7, 100):
            assert all_pages(OBIWAN_FRIEND, limit=limit, **filters) == expected, (filters, limit)
            assert all_pages(OBIWAN_FRIEND, limit=limit, newest_first=True, **filters) == expected[::-1]
