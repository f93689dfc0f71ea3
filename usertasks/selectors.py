"""Reads: search with keyset pages, the runs a user may see (DESIGN §7), and JSON views of runs."""

from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.core import signing
from django.db import connections
from django.db.models import Prefetch, Q, QuerySet

from .actors import Actor
from .exceptions import InvalidArgument, NotFound
from .models import UserTaskDef, UserTaskEvent, UserTaskRun

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_BOOKMARK_SALT = "usertasks.search.bookmark"


def visible_runs(actor: Actor) -> QuerySet[UserTaskRun]:
    """Every run the actor may see: all for managers, admins and service accounts; otherwise
    the runs assigned to them or to one of their groups. Another user's run is simply absent."""
    qs = UserTaskRun.objects.all()
    if actor.sees_all:
        return qs
    return qs.filter(Q(user_id=actor.name) | Q(user_group__in=sorted(actor.groups)))


def get_user_task_run(actor: Actor, run_id: Any) -> UserTaskRun:
    """The run with its def, or NotFound when it is absent or the actor may not see it."""
    try:
        wf_run_id, guid = run_id
    except (TypeError, ValueError):
        raise InvalidArgument("a UserTaskRun id is a pair (wf_run_id, user_task_guid)") from None
    run = (
        visible_runs(actor)
        .select_related("user_task_def", "wf_run")
        .filter(wf_run_id=wf_run_id, user_task_guid=guid)
        .first()
    )
    if run is None:
        raise NotFound(f"UserTaskRun {wf_run_id}/{guid} not found")
    return run


def get_wf_run_user_task_runs(actor: Actor, wf_run_id: Any) -> list[UserTaskRun]:
    """The WfRun's runs that the actor may see, oldest first, events prefetched in order.

    NotFound when the WfRun is absent or none of its runs is visible to the actor, so that a
    plain user cannot learn that another user's WfRun exists.
    """
    if not isinstance(wf_run_id, str) or not wf_run_id.strip():
        raise InvalidArgument("wf_run_id must not be blank")
    runs = list(
        visible_runs(actor)
        .filter(wf_run_id=wf_run_id)
        .select_related("user_task_def")
        .prefetch_related(Prefetch("events", queryset=UserTaskEvent.objects.order_by("id")))
        .order_by("scheduled_time", "id")
    )
    if not runs:
        raise NotFound(f"WfRun {wf_run_id} not found")
    return runs


@dataclass
class SearchPage:
    results: list[UserTaskRun]
    bookmark: str | None


def _clean_filter(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string")
    return value


def parse_time(value: Any, what: str) -> datetime | None:
    """An ISO 8601 time (a naive one is taken as UTC), or None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidArgument(f"{what} must be an ISO 8601 time, e.g. 2026-11-28T09:30:00Z; got {value!r}") from None
    else:
        raise InvalidArgument(f"{what} must be an ISO 8601 time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    try:
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts (up to ±23:59).
        return parsed.astimezone(dt_timezone.utc)
    except OverflowError:
        raise InvalidArgument(f"{what} is out of range; got {value!r}") from None


def _clean_limit(limit: Any) -> int:
    if limit is None or limit == "":
        return DEFAULT_LIMIT
    if isinstance(limit, str) and limit.strip().isdigit():
        limit = int(limit)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be an integer from 1 to {MAX_LIMIT}; got {limit!r}")
    return limit


def _encode_bookmark(run: UserTaskRun, newest_first: bool) -> str:
    return signing.dumps([run.scheduled_time.isoformat(), run.pk, int(newest_first)], salt=_BOOKMARK_SALT)


def _decode_bookmark(bookmark: str, newest_first: bool) -> tuple[datetime, int]:
    try:
        time_text, pk, desc = signing.loads(bookmark, salt=_BOOKMARK_SALT)
        if bool(desc) != newest_first:
            raise ValueError("bookmark of the other order")
        return datetime.fromisoformat(time_text), int(pk)
    except (signing.BadSignature, ValueError, TypeError):
        raise InvalidArgument("bookmark was not issued by this server for this search") from None


# What a page of search results carries: what the inbox shows and the API returns, not the JSON
# columns (results, actions, output, failure), whose reading and parsing was a third of a search
# (bench/search.py). Reading one of those on a result costs a query for that row.
SEARCH_RESULT_FIELDS = (
    "wf_run", "user_task_guid", "user_task_def", "user_task_def_name", "status", "user_id", "user_group",
    "notes", "scheduled_time", "epoch", "updated_at", "user_task_def__name", "user_task_def__version",
)  # fmt: skip


def _visible_first(qs: QuerySet, actor: Actor, exact: dict, order: tuple, size: int):
    """The first `size` rows of qs in `order` that the actor may see (as visible_runs).

    For a plain user, "user_id = me OR user_group IN my groups" follows no single index in
    scheduled_time order: PostgreSQL walks the time index and filters, which reads most of a
    million rows when the user's runs are old (bench/: 225 ms). Instead each way of being visible
    is its own index range scan — mine, then each of my groups without mine — limited to `size`
    and merged by a UNION ALL (the branches are disjoint).
    """
    if actor.sees_all:
        return qs.order_by(*order)[:size]
    if not connections[qs.db].features.supports_slicing_ordering_in_compound:  # SQLite: small data
        return qs.filter(Q(user_id=actor.name) | Q(user_group__in=sorted(actor.groups))).order_by(*order)[:size]
    branches = []
    if exact["user_id"] in (None, actor.name):
        branches.append(qs.filter(user_id=actor.name))
    if exact["user_id"] != actor.name:
        for group in sorted(actor.groups):
            if exact["user_group"] in (None, group):
                branches.append(qs.filter(user_group=group).exclude(user_id=actor.name))
    if not branches:
        return []
    branches = [branch.order_by(*order)[:size] for branch in branches]
    if len(branches) == 1:
        return branches[0]
    return branches[0].union(*branches[1:], all=True).order_by(*order)[:size]


def search_user_task_runs(
    *,
    actor: Actor,
    status: Any = None,
    user_task_def_name: Any = None,
    user_id: Any = None,
    user_group: Any = None,
    earliest_start: Any = None,
    latest_start: Any = None,
    limit: Any = None,
    bookmark: Any = None,
    newest_first: bool = False,
    require_filter: bool = True,
) -> SearchPage:
    """Runs matching every given filter (ANDed), ordered by scheduled_time then id.

    At least one of status, user_task_def_name, user_id, user_group is required (unless
    require_filter is False, for the web inbox's "All visible" tab). Time bounds are inclusive.
    Raises InvalidArgument for an unknown status, a bad time, a limit outside 1–1000 or a
    bookmark that this server did not issue. Only runs visible to the actor are returned.
    """
    status = _clean_filter(status, "status")
    if status is not None and status not in UserTaskRun.Status.values:
        raise InvalidArgument(f"status must be one of {', '.join(UserTaskRun.Status.values)}; got {status!r}")
    user_task_def_name = _clean_filter(user_task_def_name, "user_task_def_name")
    user_id = _clean_filter(user_id, "user_id")
    user_group = _clean_filter(user_group, "user_group")
    earliest = parse_time(earliest_start, "earliest_start")
    latest = parse_time(latest_start, "latest_start")
    limit = _clean_limit(limit)
    if require_filter and not any((status, user_task_def_name, user_id, user_group)):
        raise InvalidArgument("give at least one of status, user_task_def_name, user_id, user_group")
    if bookmark is not None and bookmark != "" and not isinstance(bookmark, str):
        raise InvalidArgument("bookmark must be a string")
    after = _decode_bookmark(bookmark, newest_first) if bookmark else None

    qs = UserTaskRun.objects.select_related("user_task_def").only(*SEARCH_RESULT_FIELDS)
    exact = {
        "status": status,
        "user_task_def_name": user_task_def_name,
        "user_id": user_id,
        "user_group": user_group,
    }
    qs = qs.filter(**{k: v for k, v in exact.items() if v is not None})
    if earliest is not None:
        qs = qs.filter(scheduled_time__gte=earliest)
    if latest is not None:
        qs = qs.filter(scheduled_time__lte=latest)
    if after is not None:
        time, pk = after
        # The inclusive bound lets the index seek; the OR only re-checks rows at that instant.
        if newest_first:
            qs = qs.filter(scheduled_time__lte=time).filter(Q(scheduled_time__lt=time) | Q(pk__lt=pk))
        else:
            qs = qs.filter(scheduled_time__gte=time).filter(Q(scheduled_time__gt=time) | Q(pk__gt=pk))
    order = ("-scheduled_time", "-id") if newest_first else ("scheduled_time", "id")
    rows = list(_visible_first(qs, actor, exact, order, limit + 1))
    page, more = rows[:limit], len(rows) > limit
    return SearchPage(results=page, bookmark=_encode_bookmark(page[-1], newest_first) if more else None)


# --- JSON views (API responses and workflow callbacks) -----------------------------------------


def comments_from_events(events: list[UserTaskEvent]) -> list[dict]:
    """Comments as they stand now, replayed from the run's COMMENT_* events in order."""
    comments: dict[int, dict] = {}
    for event in events:
        cid = event.payload.get("user_comment_id")
        if event.type == UserTaskEvent.Kind.COMMENT_ADDED:
            comments[cid] = {"user_comment_id": cid, "user_id": event.payload["user_id"],
                             "comment": event.payload["comment"], "deleted": False}
        elif event.type == UserTaskEvent.Kind.COMMENT_EDITED and cid in comments:
            comments[cid]["comment"] = event.payload["comment"]
        elif event.type == UserTaskEvent.Kind.COMMENT_DELETED and cid in comments:
            comments[cid].update(comment=None, deleted=True)
    return list(comments.values())


def event_as_dict(event: UserTaskEvent) -> dict:
    return {"time": event.time.isoformat(), "type": event.type, "actor": event.actor, **event.payload}


def run_as_dict(run: UserTaskRun, events: list[UserTaskEvent] | None = None) -> dict:
    """The UserTaskRun JSON of DESIGN §4."""
    if events is None:
        events = list(run.events.order_by("id"))
    return {
        "id": {"wf_run_id": run.wf_run_id, "user_task_guid": run.user_task_guid},
        "user_task_def_id": {"name": run.user_task_def.name, "version": run.user_task_def.version},
        "status": run.status,
        "user_id": run.user_id,
        "user_group": run.user_group,
        "results": run.results,
        "notes": run.notes,
        "scheduled_time": run.scheduled_time.isoformat(),
        "epoch": run.epoch,
        "output": run.output,
        "failure": run.failure,
        "on_cancellation_exception_name": run.on_cancellation_exception_name,
        "actions": run.actions,
        "events": [event_as_dict(e) for e in events],
        "comments": comments_from_events(events),
    }


def def_as_dict(udef: UserTaskDef) -> dict:
    """The UserTaskDef JSON of DESIGN §4."""
    return {
        "name": udef.name,
        "version": udef.version,
        "description": udef.description,
        "created_at": udef.created_at.isoformat(),
        "fields": [
            {"name": f.name, "display_name": f.display_name, "description": f.description,
             "type": f.type, "required": f.required}
            for f in udef.fields.all()
        ],
        "default_actions": udef.default_actions,
    }
