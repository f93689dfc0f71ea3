"""The managers' audit trail at /audit/ (DESIGN §7, §8, issue 5): every event, filtered and
keyset-paged; a run's timeline; the streamed CSV export; the dashboard's SVG charts."""

import csv
import io
from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.conftest import ENGINE
from usertasks import audit, services
from usertasks.actors import SYSTEM, Actor
from usertasks.models import UserTaskEvent

pytestmark = pytest.mark.django_db

EVENTS = reverse("audit:events")
EXPORT = reverse("audit:export")
DASHBOARD = reverse("audit:dashboard")
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def manager_client(client):
    managers = Group.objects.create(name="managers")
    managers.permissions.add(Permission.objects.get(codename="view_audit"))
    user = User.objects.create_user("manager", password="pw")
    user.groups.add(managers)
    client.force_login(user)
    return client


def complete(run, user_id="obiwan", results=None):
    return services.complete_user_task_run(
        run_id=run.run_id, user_id=user_id, results=results or {"requestedItem": "x"}, actor=ENGINE
    )


def listed(response) -> list[UserTaskEvent]:
    return list(response.context["page"].events)


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))


# --- permission -------------------------------------------------------------------------------


def urls_of(run):
    return [EVENTS, EXPORT, DASHBOARD, reverse("audit:run", args=[run.wf_run_id, run.user_task_guid])]


def test_anonymous_users_are_sent_to_the_login_page(client, start_run):
    for url in urls_of(start_run()):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/accounts/login/?next=")


def test_users_without_view_audit_get_403(client, start_run):
    run = start_run()
    client.force_login(User.objects.create_user("obiwan", password="pw"))
    for url in urls_of(run):
        assert client.get(url).status_code == 403


def test_staff_without_view_audit_get_403_too(client, start_run):
    run = start_run()
    client.force_login(User.objects.create_user("staffer", password="pw", is_staff=True))
    for url in urls_of(run):
        assert client.get(url).status_code == 403


def test_managers_and_superusers_see_every_page(manager_client, admin_client, start_run):
    run = start_run()
    for c in (manager_client, admin_client):
        for url in urls_of(run):
            assert c.get(url).status_code == 200


# --- the event list ---------------------------------------------------------------------------


@pytest.fixture
def history(start_run, funds_def):
    """Events of several types, actors, task types, users and groups, one minute apart."""
    with time_machine.travel(T0, tick=False) as clock:
        it = start_run(user_id="obiwan", user_group="jedi-council")  # ASSIGNED by system
        clock.shift(60)
        funds = start_run(def_name="approve-funds-for-mission", user_group="jedi-temple")
        clock.shift(60)
        services.add_comment(run_id=it.run_id, user_id="obiwan", comment="Needed soon.", actor=ENGINE)
        clock.shift(60)
        complete(it)
        clock.shift(60)
        services.cancel_user_task_run(run_id=funds.run_id, message="Called off.", actor=Actor(name="mace", is_superuser=True))
    return it, funds


def test_events_are_listed_newest_first_across_runs(manager_client, history):
    response = manager_client.get(EVENTS)
    events = listed(response)
    assert [e.type for e in events] == ["CANCELLED", "COMPLETED", "COMMENT_ADDED", "ASSIGNED", "ASSIGNED"]
    assert [e.pk for e in events] == sorted((e.pk for e in events), reverse=True)
    page = response.content.decode()
    assert "Called off." in page and "Needed soon." in page and "approve-funds-for-mission@0" in page


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"type": "ASSIGNED"}, ["ASSIGNED", "ASSIGNED"]),
        ({"actor": "mace"}, ["CANCELLED"]),
        ({"actor": "wf-engine"}, ["COMPLETED", "COMMENT_ADDED"]),
        ({"task_type": "approve-funds-for-mission"}, ["CANCELLED", "ASSIGNED"]),
        ({"user": "obiwan"}, ["COMPLETED", "COMMENT_ADDED", "ASSIGNED"]),
        ({"group": "jedi-temple"}, ["CANCELLED", "ASSIGNED"]),
        ({"since": "2026-03-10T12:01", "until": "2026-03-10T12:03"}, ["COMPLETED", "COMMENT_ADDED", "ASSIGNED"]),
        ({"since": "2026-03-10T12:04:00+00:00"}, ["CANCELLED"]),
        ({"type": "ASSIGNED", "group": "jedi-council"}, ["ASSIGNED"]),
        ({"actor": "nobody"}, []),
    ],
)
def test_filters(manager_client, history, params, expected):
    response = manager_client.get(EVENTS, params)
    assert response.status_code == 200
    assert [e.type for e in listed(response)] == expected


def test_the_workflow_run_filter_and_the_timeline_link_to_it(manager_client, history):
    it, _ = history
    assert {e.user_task_run_id for e in listed(manager_client.get(EVENTS, {"wf_run": it.wf_run_id}))} == {it.pk}


def test_an_invalid_filter_is_a_400_with_the_error_beside_the_field(manager_client, history):
    response = manager_client.get(EVENTS, {"since": "yesterday-ish", "type": "EXPLODED"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter a valid date/time." in page
    assert "Select a valid choice." in page
    assert listed(response) == []


def test_the_task_type_filter_offers_every_def_name_once(manager_client, history):
    choices = manager_client.get(EVENTS).context["filterset"].form.fields["task_type"].choices
    assert [value for value, _ in choices] == ["", "approve-funds-for-mission", "it-request"]


@pytest.fixture
def many_events(start_run):
    """33 events: 20 of them at the very same instant (ties broken by id), 13 a second apart."""
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(20):
            start_run(user_group="jedi-council")
        for _ in range(13):
            clock.shift(1)
            start_run(user_group="jedi-council")
    return list(UserTaskEvent.objects.order_by("-time", "-id").values_list("pk", flat=True))


def test_keyset_pages_walk_every_event_once_in_order_both_ways(manager_client, many_events):
    seen, cursors, params = [], [], {"limit": 7}
    while True:
        response = manager_client.get(EVENTS, params)
        page = response.context["page"]
        seen += [e.pk for e in page.events]
        cursors.append(params)
        if not page.older:
            break
        assert f"older={page.older}" in response.content.decode()
        params = {"limit": 7, "older": page.older}
    assert seen == many_events
    assert len(cursors) == 5  # 7 + 7 + 7 + 7 + 5

    # ...and back towards the newest with the Newer links.
    back = []
    newer = manager_client.get(EVENTS, params).context["page"].newer
    while newer:
        page = manager_client.get(EVENTS, {"limit": 7, "newer": newer}).context["page"]
        back = [e.pk for e in page.events] + back
        newer = page.newer
    assert back == many_events[:28]


def test_pages_never_use_offset(manager_client, many_events):
    first = manager_client.get(EVENTS, {"limit": 5}).context["page"]
    with CaptureQueriesContext(connection) as ctx:
        manager_client.get(EVENTS, {"limit": 5, "older": first.older})
    assert not [q["sql"] for q in ctx.captured_queries if "OFFSET" in q["sql"].upper()]


def test_a_tampered_cursor_is_a_400(manager_client, many_events):
    for bad in ("x", "1.2.3", "99999999999999999999999.1"):
        assert manager_client.get(EVENTS, {"older": bad}).status_code == 400
    assert manager_client.get(EVENTS, {"limit": "0"}).status_code == 400


def event_list_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(EVENTS).status_code == 200
    return len(ctx.captured_queries)


def test_the_event_list_makes_as_many_queries_for_one_event_as_for_fifty(manager_client, start_run, funds_def):
    start_run(user_group="jedi-council")
    one = event_list_queries(manager_client)
    for i in range(49):
        start_run(def_name=("it-request", "approve-funds-for-mission")[i % 2], user_id=f"u{i}", user_group="g")
    assert event_list_queries(manager_client) == one


# --- the run timeline -------------------------------------------------------------------------


def test_the_timeline_shows_a_runs_events_in_order_with_elapsed_time(manager_client, history):
    it, _ = history
    response = manager_client.get(reverse("audit:run", args=[it.wf_run_id, it.user_task_guid]))
    assert response.status_code == 200
    items = response.context["events"]
    assert [i["event"].type for i in items] == ["ASSIGNED", "COMMENT_ADDED", "COMPLETED"]
    assert [i["elapsed"] for i in items] == ["0 s", "2 min", "3 min"]
    page = response.content.decode()
    assert "it-request@0" in page and "DONE" in page and "Needed soon." in page
    assert f"?wf_run={it.wf_run_id}" in page
    assert f'href="/tasks/{it.wf_run_id}/{it.user_task_guid}/"' in page


def test_the_timeline_of_an_unknown_run_is_404(manager_client, history):
    assert manager_client.get(reverse("audit:run", args=["nope", "nope"])).status_code == 404


# --- CSV export -------------------------------------------------------------------------------


def test_the_export_is_a_streamed_csv_attachment_of_the_current_filter(manager_client, history):
    it, funds = history
    response = manager_client.get(EXPORT, {"group": "jedi-temple"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-')
    assert response["Content-Disposition"].endswith('.csv"')
    rows = read_csv(response)
    assert rows[0] == audit.CSV_HEADER
    assert [r[2] for r in rows[1:]] == ["CANCELLED", "ASSIGNED"]
    cancelled = dict(zip(rows[0], rows[1]))
    assert cancelled == {
        "time": "2026-03-10T12:04:00+00:00",
        "event_id": cancelled["event_id"],
        "type": "CANCELLED",
        "actor": "mace",
        "wf_run_id": funds.wf_run_id,
        "user_task_guid": funds.user_task_guid,
        "user_task_def_name": "approve-funds-for-mission",
        "user_task_def_version": "0",
        "run_user_id": "",
        "run_user_group": "jedi-temple",
        "details": "Called off.",
        "payload": '{"message": "Called off."}',
    }


def test_the_export_without_a_filter_has_every_event_newest_first(manager_client, many_events):
    rows = read_csv(manager_client.get(EXPORT))
    assert [int(r[1]) for r in rows[1:]] == many_events


def test_the_export_reads_rows_in_chunks_only_while_streaming(manager_client, many_events, monkeypatch):
    from django.db.models.query import QuerySet

    chunk_sizes, real_iterator = [], QuerySet.iterator

    def spy(self, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return real_iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    monkeypatch.setattr(audit, "EXPORT_CHUNK_SIZE", 10)
    with CaptureQueriesContext(connection) as before_reading:
        response = manager_client.get(EXPORT)
    assert not [q for q in before_reading.captured_queries if "usertasks_usertaskevent" in q["sql"]]
    assert chunk_sizes == []
    with CaptureQueriesContext(connection) as reading:
        rows = read_csv(response)
    assert len(rows) == 1 + len(many_events)
    assert chunk_sizes == [10]
    assert len([q for q in reading.captured_queries if "usertasks_usertaskevent" in q["sql"]]) == 1


def test_an_invalid_export_filter_is_a_400(manager_client, history):
    response = manager_client.get(EXPORT, {"until": "soon"})
    assert response.status_code == 400
    assert "until" in response.content.decode()


def test_formula_cells_are_neutralised(manager_client, start_run):
    run = start_run(user_id="=HYPERLINK(\"http://evil\")", user_group="@group", notes="-notes")
    services.add_comment(run_id=run.run_id, user_id="obiwan", comment="+SUM(1,2)", actor=Actor(name="-actor", is_superuser=True))
    rows = read_csv(manager_client.get(EXPORT))
    header, comment, assigned = rows[0], dict(zip(rows[0], rows[1])), dict(zip(rows[0], rows[2]))
    assert header == audit.CSV_HEADER
    assert comment["details"] == "'+SUM(1,2)"
    assert comment["actor"] == "'-actor"
    assert comment["run_user_id"] == "'=HYPERLINK(\"http://evil\")"
    assert comment["run_user_group"] == "'@group"
    assert assigned["type"] == "ASSIGNED" and assigned["actor"] == "system"
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


@pytest.mark.parametrize("value, expected", [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"),
                                             ("\tx", "'\tx"), ("a=b", "a=b"), ("", ""), (None, ""), (5, "5")])  # fmt: skip
def test_csv_cell(value, expected):
    assert audit.csv_cell(value) == expected


@pytest.mark.parametrize(
    "kind, payload, text",
    [
        ("ASSIGNED", {"old_user_id": None, "old_user_group": None, "new_user_id": "yoda", "new_user_group": None}, "to yoda"),
        ("ASSIGNED", {"old_user_id": "yoda", "old_user_group": "g", "new_user_id": None, "new_user_group": "g"},
         "yoda (group g) → group g"),
        ("CANCELLED", {"message": "Called off."}, "Called off."),
        ("COMPLETED", {"user_id": "obiwan"}, "by obiwan"),
        ("SAVED", {"user_id": "obiwan", "results": {"b": 1, "a": "x"}}, 'by obiwan: {"a": "x", "b": 1}'),
        ("COMMENT_EDITED", {"user_comment_id": 2, "user_id": "obiwan", "comment": "New text"}, "New text"),
        ("COMMENT_DELETED", {"user_comment_id": 2, "user_id": "obiwan"}, "comment 2 of obiwan deleted"),
        ("TASK_EXECUTED", {"action": {"type": "REMINDER", "hook": "ON_ARRIVAL", "delay_seconds": 60},
                           "delivered_to": ["obiwan", "yoda"], "channels": ["in_app", "email"]},
         "REMINDER delivered to obiwan, yoda (in_app, email)"),
        ("TASK_EXECUTED", {"action": {"type": "REMINDER"}, "delivered_to": [], "channels": []}, "REMINDER delivered to nobody"),
    ],
)  # fmt: skip
def test_describe_event(kind, payload, text):
    assert audit.describe_event(kind, payload) == text


# --- escaping ---------------------------------------------------------------------------------

SCRIPT = "<script>alert('x')</script>"
IMG = "<img src=x onerror=alert(1)>"


def test_user_text_is_escaped_on_every_audit_page(manager_client, start_run):
    run = start_run(user_id=IMG, user_group=SCRIPT, notes=SCRIPT)
    services.add_comment(run_id=run.run_id, user_id="obiwan", comment=IMG + SCRIPT, actor=ENGINE)
    services.cancel_user_task_run(run_id=run.run_id, message=SCRIPT, actor=SYSTEM)
    for url in (EVENTS, DASHBOARD, reverse("audit:run", args=[run.wf_run_id, run.user_task_guid])):
        page = manager_client.get(url).content.decode()
        assert "<script>alert(" not in page, url
        assert "<img src=x" not in page, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, url


# --- dashboard --------------------------------------------------------------------------------


def test_the_dashboard_with_no_runs_says_so_and_draws_no_chart(manager_client):
    response = manager_client.get(DASHBOARD)
    assert response.status_code == 200
    page = response.content.decode()
    assert "No runs yet." in page
    assert "No runs were completed in this period." in page
    assert "No runs were created in this period." in page
    assert "data-chart=" not in page


@pytest.fixture
def dashboard_data(start_run, funds_def):
    """it-request completed after 1, 2, 3, 4 and 10 hours; funds after 1 and 3 days; one open
    run of yoda's; one cancelled run."""
    for hours in (1, 2, 3, 4, 10):
        with time_machine.travel(T0 + timedelta(days=2), tick=False) as clock:
            run = start_run(user_group="jedi-council")
            clock.shift(timedelta(hours=hours))
            complete(run)
    for days in (1, 3):
        with time_machine.travel(T0 + timedelta(days=3), tick=False) as clock:
            run = start_run(def_name="approve-funds-for-mission", user_group="jedi-council")
            clock.shift(timedelta(days=days))
            complete(run, user_id="mace", results={"amount": 10.0, "approved": True})
    with time_machine.travel(T0 + timedelta(days=5), tick=False):
        start_run(user_id="yoda", user_group="jedi-council")
    with time_machine.travel(T0 + timedelta(days=6), tick=False):
        run = start_run(user_group="jedi-temple")
        services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM)


def test_the_dashboard_charts_with_data(manager_client, dashboard_data):
    with time_machine.travel(T0 + timedelta(days=10), tick=False):
        response = manager_client.get(DASHBOARD)
    assert response.status_code == 200
    page = response.content.decode()
    for chart in ("flow", "durations", "assignees"):
        assert f'data-chart="{chart}"' in page

    flow = response.context["flow"]
    assert flow.now == (date(2026, 3, 20), 1, 7, 1)
    assert flow.created == 9 and flow.completed == 7 and flow.cancelled == 1
    days = {day: rest for day, *rest in flow.days}
    assert days[date(2026, 3, 12)] == [0, 5, 0]  # created and completed the same day
    assert days[date(2026, 3, 13)] == [2, 5, 0]
    assert days[date(2026, 3, 14)] == [1, 6, 0]
    assert days[date(2026, 3, 16)] == [1, 7, 1]
    assert days[date(2026, 3, 15)] == [2, 6, 0]
    assert days[date(2026, 3, 19)] == [1, 7, 1]
    assert len(flow.bands) == 3 and all(points for _, _, points in flow.bands)

    rows = {row.task_type: row for row in response.context["durations"].rows}
    assert (rows["it-request"].count, rows["it-request"].median, rows["it-request"].p90) == (
        5, timedelta(hours=3), timedelta(hours=7, minutes=36),
    )  # fmt: skip
    assert (rows["approve-funds-for-mission"].median, rows["approve-funds-for-mission"].p90) == (
        timedelta(days=2), timedelta(days=2, hours=19, minutes=12),
    )  # fmt: skip
    for text in ("3 h", "7 h 36 min", "2 d", "2 d 19 h"):
        assert f"<td>{text}</td>" in page

    assignees = [(r.user_id, r.open, r.done, r.cancelled) for r in response.context["assignees"].rows]
    assert assignees == [("obiwan", 0, 5, 0), ("mace", 0, 2, 0), ("yoda", 1, 0, 0), (None, 0, 0, 1)]
    assert "(unassigned)" in page


def test_a_short_period_keeps_the_backlog_but_not_older_completions(manager_client, dashboard_data):
    with time_machine.travel(T0 + timedelta(days=10), tick=False):
        response = manager_client.get(DASHBOARD, {"days": 7})
    assert response.context["period"].days == 7
    assert response.context["flow"].now == (date(2026, 3, 20), 1, 7, 1)
    assert [r.task_type for r in response.context["durations"].rows] == ["approve-funds-for-mission"]
    assert [r.user_id for r in response.context["assignees"].rows] == ["yoda", None]


def test_an_unknown_period_falls_back_to_30_days(manager_client):
    for days in ("abc", "-1", "12"):
        assert manager_client.get(DASHBOARD, {"days": days}).context["period"].days == 30


def test_the_dashboard_makes_the_same_queries_whatever_the_data(manager_client, dashboard_data, start_run):
    with time_machine.travel(T0 + timedelta(days=10), tick=False):
        with CaptureQueriesContext(connection) as few:
            manager_client.get(DASHBOARD)
        for i in range(20):
            complete(start_run(user_id=f"u{i}", user_group="g"), user_id=f"u{i}")
        with CaptureQueriesContext(connection) as more:
            manager_client.get(DASHBOARD)
    assert len(more.captured_queries) == len(few.captured_queries)


def test_percentiles_of_a_single_run_are_its_duration():
    positions = audit._order_statistics(1)
    assert positions == {0.5: (0, 0, 0.0), 0.9: (0, 0, 0.0)}


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3600, "1 h"), (3660, "1 h 1 min"), (86400, "1 d"), (90000, "1 d 1 h")],
)
def test_human_duration(seconds, text):
    assert audit.human_duration(timedelta(seconds=seconds)) == text


def test_nice_ticks():
    assert audit.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert audit.nice_ticks(1) == [0, 1]
    assert audit.nice_ticks(100) == [0, 50, 100]
    assert audit.nice_ticks(0) == [0, 1]


# --- the list's two query shapes (filters on the run) -------------------------------------------


@pytest.fixture
def shared_times(start_run, funds_def):
    """Runs of two groups whose events share instants: 12 jedi-temple runs (old, 3 events each,
    one instant per run for all three) among 40 jedi-council runs, several runs per instant."""
    with time_machine.travel(T0, tick=False) as clock:
        for i in range(12):
            run = start_run(def_name="approve-funds-for-mission", user_group="jedi-temple")
            services.add_comment(run_id=run.run_id, user_id="mace", comment=f"c{i}", actor=ENGINE)
            start_run(user_group="jedi-council")
            services.add_comment(run_id=run.run_id, user_id="mace", comment=f"d{i}", actor=ENGINE)
            if i % 3 == 2:
                clock.shift(1)
        for i in range(28):
            clock.shift(60 if i % 2 else 0)
            start_run(user_group="jedi-council")
    return list(
        UserTaskEvent.objects.filter(user_task_run__user_group="jedi-temple").order_by("-time", "-id").values_list("pk", flat=True)
    )


def force_shape(monkeypatch, run_first: bool):
    if run_first:
        monkeypatch.setattr(audit, "WALK_MAX", -1)
        monkeypatch.setattr(audit, "RUNS_MAX", 10**9)
    else:
        monkeypatch.setattr(audit, "WALK_MAX", 10**9)
        monkeypatch.setattr(audit, "WALK_COST", 0)


def walk_pages(client, params, size):
    seen, newer_walk, query = [], [], {**params, "limit": size}
    while True:
        page = client.get(EVENTS, query).context["page"]
        seen += [e.pk for e in page.events]
        if not page.older:
            break
        query = {**params, "limit": size, "older": page.older}
    newer = client.get(EVENTS, query).context["page"].newer
    while newer:
        page = client.get(EVENTS, {**params, "limit": size, "newer": newer}).context["page"]
        newer_walk = [e.pk for e in page.events] + newer_walk
        newer = page.newer
    return seen, newer_walk


@pytest.mark.parametrize("run_first", [True, False])
def test_run_filters_page_the_same_whichever_shape(manager_client, shared_times, monkeypatch, run_first):
    force_shape(monkeypatch, run_first)
    expected = shared_times
    assert len(expected) == 36
    seen, back = walk_pages(manager_client, {"group": "jedi-temple"}, 5)
    assert seen == expected
    assert back == expected[: len(back)] and len(back) == 35  # all but the last page (1 event)
    seen, _ = walk_pages(manager_client, {"group": "jedi-temple", "type": "COMMENT_ADDED"}, 4)
    assert seen == list(
        UserTaskEvent.objects.filter(user_task_run__user_group="jedi-temple", type="COMMENT_ADDED")
        .order_by("-time", "-id").values_list("pk", flat=True)
    )  # fmt: skip
    listed_ = listed(manager_client.get(EVENTS, {"task_type": "approve-funds-for-mission", "limit": 500}))
    assert [e.pk for e in listed_] == expected


@pytest.mark.parametrize("run_first", [True, False])
def test_run_filters_follow_the_runs_current_group_whichever_shape(manager_client, shared_times, monkeypatch, run_first):
    force_shape(monkeypatch, run_first)
    run = UserTaskEvent.objects.get(pk=shared_times[0]).user_task_run
    services.assign_user_task_run(run_id=run.run_id, user_group="jedi-council", actor=ENGINE)
    temple = [e.user_task_run_id for e in listed(manager_client.get(EVENTS, {"group": "jedi-temple", "limit": 500}))]
    assert run.pk not in temple and len(temple) == 33
    council = [e.user_task_run_id for e in listed(manager_client.get(EVENTS, {"group": "jedi-council", "limit": 500}))]
    assert council.count(run.pk) == 4


def test_few_old_runs_are_read_run_first_and_many_recent_ones_joined(shared_times, monkeypatch):
    monkeypatch.setattr(audit, "PAGE_SIZE", 10)  # jedi-council's 40 runs: 4 pages of runs, the newest events

    def shape(params):
        filterset = audit.AuditEventFilter(params, queryset=UserTaskEvent.objects.all())
        assert filterset.is_valid()
        return "runs" if audit._list_query(filterset).runs is not None else "joined"

    assert shape({"group": "jedi-temple"}) == "runs"
    assert shape({"wf_run": UserTaskEvent.objects.first().user_task_run.wf_run_id}) == "runs"
    assert shape({"group": "jedi-council"}) == "joined"
    assert shape({"type": "ASSIGNED"}) == "joined"  # no filter on the run
