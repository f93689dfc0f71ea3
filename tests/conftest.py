import os
from contextlib import contextmanager

import pytest
from django.db import connection

from usertasks import services
from usertasks.actors import SYSTEM, Actor

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses that otherwise.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS, "headless": True}


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests are deselected on SQLite (row locks are a no-op there) and must run
    in CI's PostgreSQL leg: TASKMANAGER_REQUIRE_POSTGRES=1 turns a non-PostgreSQL database into
    an error instead of a silent pass."""
    on_postgres = connection.vendor == "postgresql"
    if os.environ.get("TASKMANAGER_REQUIRE_POSTGRES") == "1" and not on_postgres:
        raise pytest.UsageError("TASKMANAGER_REQUIRE_POSTGRES=1 but DATABASE_URL is not PostgreSQL")
    if on_postgres:
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# --- identities -----------------------------------------------------------------------------

ENGINE = Actor(name="wf-engine", permissions=frozenset({"usertasks.act_for_others"}))
OBIWAN = Actor(name="obiwan", groups=frozenset({"jedi-council"}))
YODA = Actor(name="yoda", groups=frozenset({"jedi-council"}))
MACE = Actor(name="mace", groups=frozenset({"jedi-temple"}))
ADMIN = Actor(name="admin", is_superuser=True)


@pytest.fixture
def engine():
    return ENGINE


@pytest.fixture
def obiwan():
    return OBIWAN


@pytest.fixture
def yoda():
    return YODA


@pytest.fixture
def mace():
    return MACE


# --- domain data ----------------------------------------------------------------------------

IT_REQUEST_FIELDS = [
    {"name": "requestedItem", "display_name": "Requested item", "type": "STR", "required": True},
    {"name": "justification", "display_name": "Justification", "type": "STR"},
]
FUNDS_FIELDS = [
    {"name": "amount", "display_name": "Amount", "type": "DOUBLE", "required": True},
    {"name": "approved", "display_name": "Approved", "type": "BOOL", "required": True},
    {"name": "reason", "display_name": "Reason", "type": "STR"},
    {"name": "headcount", "display_name": "Head count", "type": "INT"},
]


@pytest.fixture
def it_request(db):
    udef, _ = services.put_user_task_def(name="it-request", fields=IT_REQUEST_FIELDS, actor=SYSTEM)
    return udef


@pytest.fixture
def funds_def(db):
    udef, _ = services.put_user_task_def(name="approve-funds-for-mission", fields=FUNDS_FIELDS, actor=SYSTEM)
    return udef


@pytest.fixture
def start_run(it_request):
    """start_run(user_id=..., user_group=..., def_name=...) -> a fresh UserTaskRun."""

    def _start(*, def_name="it-request", user_id=None, user_group="jedi-council", **kwargs):
        return services.start_user_task_run(
            user_task_def_name=def_name, user_id=user_id, user_group=user_group, actor=SYSTEM, **kwargs
        )

    return _start


def snapshot(run):
    """Everything a rejected call must leave untouched."""
    run.refresh_from_db()
    return (run.status, run.user_id, run.user_group, run.results, run.epoch, run.output, run.failure,
            run.events.count())


@contextmanager
def rejected(run, error, match=None):
    """The call inside raises `error` and leaves the run exactly as it was, events included."""
    before = snapshot(run)
    with pytest.raises(error, match=match) as excinfo:
        yield excinfo
    assert excinfo.value.code == error.code
    assert snapshot(run) == before


@pytest.fixture
def obiwans(start_run):
    """An it-request run held by obiwan within jedi-council."""
    return start_run(user_id="obiwan", user_group="jedi-council")


@pytest.fixture
def unassigned(start_run):
    """An it-request run waiting in jedi-council."""
    return start_run(user_group="jedi-council")


@pytest.fixture
def funds_run(funds_def, start_run):
    """An approve-funds-for-mission run held by obiwan within jedi-council."""
    return start_run(def_name="approve-funds-for-mission", user_id="obiwan", user_group="jedi-council")
