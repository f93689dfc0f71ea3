"""The inbox at /: tabs, the six search filters, keyset pages, empty states, query counts."""

import re
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from usertasks import services, views
from usertasks.actors import SYSTEM

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def login(db):
    """login(username, groups=(), perms=(), superuser=False) -> a logged-in test Client."""

    def _login(username, groups=(), perms=(), superuser=False):
        user = User.objects.create_user(username, is_superuser=superuser, is_staff=superuser)
        user.groups.add(*[Group.objects.get_or_create(name=g)[0] for g in groups])
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="usertasks", codename__in=perms))
        client = Client()
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def obiwan_client(login):
    return login("obiwan", groups=["jedi-council"])


def start_at(when, start_run, **kwargs):
    with time_machine.travel(when, tick=False):
        return start_run(**kwargs)


def rows(response) -> list[str]:
    """The task links of the inbox table, in order, as wf_run_id/guid."""
    return re.findall(r'href="/tasks/([^/"]+/[0-9a-f]{32})/"', response.content.decode())


def key(run) -> str:
    return f"{run.wf_run_id}/{run.user_task_guid}"


# --- access, navbar ---------------------------------------------------------------------------


def test_inbox_needs_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


def test_login_page_and_logging_in(client, db):
    User.objects.create_user("obiwan", password="hello-there")
    page = client.get("/accounts/login/").content.decode()
    assert "Username" in page and "Password" in page and "Log in" in page
    response = client.post("/accounts/login/", {"username": "obiwan", "password": "hello-there"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_wrong_password_says_so(client, db):
    User.objects.create_user("obiwan", password="hello-there")
    response = client.post("/accounts/login/", {"username": "obiwan", "password": "nope"})
    assert "didn't match" in response.content.decode()


def test_logout_is_a_post(obiwan_client):
    assert obiwan_client.post("/accounts/logout/").status_code == 302
    assert obiwan_client.get("/").status_code == 302


def test_navbar_shows_user_groups_and_links_by_permission(login):
    page = login("obiwan", groups=["jedi-council", "pilots"]).get("/").content.decode()
    assert "obiwan" in page and "jedi-council" in page and "pilots" in page
    assert 'href="/audit/"' not in page and "/admin/" not in page
    manager_page = login("manager", perms=["view_audit"]).get("/").content.decode()
    assert 'href="/audit/">Audit</a>' in manager_page and "/admin/" not in manager_page
    admin_page = login("admin", superuser=True).get("/").content.decode()
    assert 'href="/audit/">Audit</a>' in admin_page and 'href="/admin/">Admin</a>' in admin_page


def test_inbox_has_tabs_and_the_six_filters(obiwan_client):
    page = obiwan_client.get("/").content.decode()
    for label in ("Assigned to me", "Claimable", "All visible", "Status", "Task type", "User", "Group",
                  "Created after", "Created before", ">Search</button>"):
        assert label in page


# --- tabs -------------------------------------------------------------------------------------


@pytest.fixture
def council_runs(start_run, login):
    """Runs of every kind around obiwan; returns a dict name -> run."""
    runs = {
        "mine": start_run(user_id="obiwan", notes="mine"),
        "claimable": start_run(user_id=None, notes="claimable"),
        "yodas": start_run(user_id="yoda", notes="yodas"),
        "temple": start_run(user_id=None, user_group="jedi-temple", notes="temple"),
        "mine_done": start_run(user_id="obiwan", notes="mine done"),
    }
    services.complete_user_task_run(run_id=runs["mine_done"].run_id, user_id="obiwan",
                                    results={"requestedItem": "x"}, actor=SYSTEM)
    return runs


def test_assigned_to_me_lists_only_my_open_runs(obiwan_client, council_runs):
    assert rows(obiwan_client.get("/?tab=assigned")) == [key(council_runs["mine"])]
    assert rows(obiwan_client.get("/")) == [key(council_runs["mine"])]  # the default tab


def test_claimable_lists_unassigned_runs_of_my_groups(obiwan_client, council_runs):
    assert rows(obiwan_client.get("/?tab=claimable")) == [key(council_runs["claimable"])]


def test_all_visible_lists_every_run_i_may_see_newest_first(obiwan_client, council_runs):
    expected = [key(council_runs[n]) for n in ("mine_done", "yodas", "claimable", "mine")]
    assert rows(obiwan_client.get("/?tab=all")) == expected


def test_claimable_of_a_manager_is_only_their_groups(login, council_runs):
    manager = login("manager", groups=["managers"], perms=["view_audit"])
    assert rows(manager.get("/?tab=claimable")) == []
    assert len(rows(manager.get("/?tab=all"))) == 5  # a manager sees every run


def test_other_groups_runs_never_appear(login, council_runs):
    mace = login("mace", groups=["jedi-temple"])
    for tab in ("assigned", "claimable", "all"):
        listed = rows(mace.get(f"/?tab={tab}"))
        assert all(key(council_runs[n]) not in listed for n in ("mine", "claimable", "yodas", "mine_done"))
    assert rows(mace.get("/?tab=all")) == [key(council_runs["temple"])]


def test_columns_show_type_notes_status_user_group_created_age(obiwan_client, start_run):
    with time_machine.travel(T0, tick=False):
        start_run(user_id="obiwan", notes="A very long note " * 10)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        page = obiwan_client.get("/").content.decode()
    for header in ("Task type", "Notes", "Status", "User", "Group", "Created", "Age"):
        assert f">{header}" in page
    assert "it-request" in page and "ASSIGNED" in page and "jedi-council" in page
    assert "2026-03-01 09:00" in page and "2\xa0days" in page
    assert "A very long note A very long note A very long note A very l…" in page  # shortened


# --- search filters -----------------------------------------------------------------------------


@pytest.fixture
def dated_runs(start_run, funds_def):
    return {
        "old_it": start_at(T0, start_run, user_id=None),
        "new_it": start_at(T0 + timedelta(days=2), start_run, user_id="yoda"),
        "funds": start_at(T0 + timedelta(days=1), start_run, def_name="approve-funds-for-mission", user_id="obiwan"),
        "other_group": start_at(T0, start_run, user_id="obiwan", user_group="pilots"),
    }


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=UNASSIGNED", ["old_it"]),
        ("user_task_def_name=approve-funds-for-mission", ["funds"]),
        ("user_id=yoda", ["new_it"]),
        ("user_group=pilots", ["other_group"]),
        ("earliest_start=2026-03-02T00:00", ["new_it", "funds"]),
        ("latest_start=2026-03-02T09:00", ["funds", "other_group", "old_it"]),  # inclusive bound
        ("earliest_start=2026-03-01T10:00&latest_start=2026-03-02T12:00", ["funds"]),
        ("user_task_def_name=it-request&user_id=obiwan", ["other_group"]),
        ("status=DONE", []),
    ],
)
def test_search_filters_are_anded(obiwan_client, dated_runs, query, expected):
    found = rows(obiwan_client.get(f"/?tab=all&{query}"))
    # Same scheduled_time: newer id first.
    assert sorted(found) == sorted(key(dated_runs[n]) for n in expected)
    if expected and len(set(dated_runs[n].scheduled_time for n in expected)) == len(expected):
        assert found == [key(dated_runs[n]) for n in expected]


def test_filters_apply_inside_a_tab_and_conflicts_find_nothing(obiwan_client, dated_runs):
    assert rows(obiwan_client.get("/?tab=assigned&user_task_def_name=approve-funds-for-mission")) == [key(dated_runs["funds"])]
    response = obiwan_client.get("/?tab=assigned&status=DONE")
    assert rows(response) == []
    assert "No tasks match these filters." in response.content.decode()


def test_task_type_choices_come_from_the_defs(obiwan_client, dated_runs):
    page = obiwan_client.get("/").content.decode()
    assert '<option value="approve-funds-for-mission">' in page and '<option value="it-request">' in page


def test_a_bad_filter_is_shown_beside_its_field_and_lists_nothing(obiwan_client, dated_runs):
    response = obiwan_client.get("/?tab=all&earliest_start=yesterday&status=BOGUS")
    page = response.content.decode()
    assert "Enter a valid date/time." in page
    assert "Select a valid choice." in page
    assert rows(response) == []
    assert 'value="yesterday"' in page  # what was typed is kept


def test_search_keeps_the_typed_filters(obiwan_client, dated_runs):
    page = obiwan_client.get("/?tab=all&user_id=yoda&user_group=jedi-council").content.decode()
    assert 'value="yoda"' in page and 'value="jedi-council"' in page


def test_sorting_by_created_oldest_first(obiwan_client, dated_runs):
    found = rows(obiwan_client.get("/?tab=all&order=oldest&user_task_def_name=it-request"))
    assert found[-1] == key(dated_runs["new_it"])
    assert set(found[:2]) == {key(dated_runs["old_it"]), key(dated_runs["other_group"])}
    page = obiwan_client.get("/?tab=all").content.decode()
    assert "order=oldest" in page and 'aria-sort="descending"' in page


# --- pages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_pagination_walks_every_run_once_in_order(obiwan_client, start_run, monkeypatch, order):
    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    created = [start_at(T0 + timedelta(minutes=i // 2), start_run, user_id="obiwan") for i in range(8)]
    url = f"/?tab=assigned&order={order}"
    seen, pages = [], 0
    while url:
        response = obiwan_client.get(url)
        assert response.status_code == 200
        seen += rows(response)
        pages += 1
        match = re.search(r'href="(\?[^"]*bookmark=[^"]*)"[^>]*rel="next"', response.content.decode())
        url = "/" + match.group(1).replace("&amp;", "&") if match else None
        if url:
            assert "tab=assigned" in url and f"order={order}" in url  # the bookmark keeps the search
    expected = sorted(created, key=lambda r: (r.scheduled_time, r.pk), reverse=order == "newest")
    assert pages == 3
    assert seen == [key(r) for r in expected]
    assert "First page" in response.content.decode()


def test_a_forged_bookmark_is_refused(obiwan_client, start_run):
    start_run(user_id="obiwan")
    response = obiwan_client.get("/?tab=assigned&bookmark=not-ours")
    assert response.status_code == 400
    assert "bookmark was not issued by this server" in response.content.decode()


# --- empty states -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tab, says",
    [
        ("assigned", "Nothing is assigned to you."),
        ("claimable", "Nothing to claim right now."),
        ("all", "No tasks are visible to you yet."),
    ],
)
def test_empty_states_say_what_to_do(obiwan_client, tab, says):
    page = obiwan_client.get(f"/?tab={tab}").content.decode()
    assert says in page


def test_empty_claimable_without_groups_says_so(login):
    page = login("loner").get("/?tab=claimable").content.decode()
    assert "You are not in any group." in page


# --- query count ------------------------------------------------------------------------------


@pytest.mark.parametrize("tab", ["assigned", "claimable", "all"])
def test_list_pages_run_the_same_number_of_queries_for_1_and_50_rows(
    obiwan_client, start_run, django_assert_num_queries, tab
):
    user_id = None if tab == "claimable" else "obiwan"
    start_run(user_id=user_id, notes="first")
    with CaptureQueriesContext(connection) as one_row:
        response = obiwan_client.get(f"/?tab={tab}&user_task_def_name=it-request")
    assert len(rows(response)) == 1
    assert len(one_row) <= 10, [q["sql"] for q in one_row]
    for i in range(49):
        start_run(user_id=user_id, notes=f"run {i}")
    with django_assert_num_queries(len(one_row)):
        response = obiwan_client.get(f"/?tab={tab}&user_task_def_name=it-request")
    assert len(rows(response)) == 50


def test_row_links_are_what_reverse_gives(obiwan_client, start_run):
    run = start_run(user_id="obiwan", wf_run_id="Order_42-x")
    page = obiwan_client.get("/").content.decode()
    link = reverse("usertasks:task", args=(run.wf_run_id, run.user_task_guid))
    assert link.startswith("/tasks/Order_42-x/")
    assert f'href="{escape(link)}"' in page
    assert obiwan_client.get(link).status_code == 200


# --- escaping -----------------------------------------------------------------------------------


def test_notes_and_identities_are_escaped_in_the_list(obiwan_client, start_run):
    start_run(user_id="obiwan", notes="<script>alert('notes')</script>")
    start_run(user_id=None, user_group="jedi-council", notes='"><img src=x onerror=alert(1)>')
    page = obiwan_client.get("/?tab=all").content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;notes&#x27;)&lt;/script&gt;" in page


def test_search_values_are_escaped(obiwan_client, db):
    page = obiwan_client.get('/?tab=all&user_id="><script>alert(1)</script>').content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&quot;&gt;&lt;script&gt;" in page
