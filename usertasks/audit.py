"""Audit trail for managers (DESIGN §8), mounted at /audit/: every event across runs (filtered,
keyset-paged, newest first), a run's timeline, a streamed CSV export and a dashboard of charts
drawn on the server as inline SVG. Everything needs `usertasks.view_audit`.

Reads only: nothing here writes a run or an event.
"""

import csv
import io
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

import django_filters
from django import forms
from django.contrib.auth.decorators import login_required, permission_required
from django.db import connection
from django.db.models import Aggregate, BooleanField, Count, DurationField, F, Func, Q, Subquery
from django.db.models.functions import TruncDate
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils import timezone

from .actors import PERM_VIEW_AUDIT
from .models import UserTaskDef, UserTaskEvent, UserTaskRun

Kind = UserTaskEvent.Kind
Status = UserTaskRun.Status

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
EXPORT_CHUNK_SIZE = 2000
DASHBOARD_PERIODS = (7, 30, 90, 365)
TOP_ASSIGNEES = 15


def manager_required(view):
    """Anonymous → the login page; logged in without view_audit → 403."""
    return login_required(permission_required(PERM_VIEW_AUDIT, raise_exception=True)(view))


# --- what an event says, in words ------------------------------------------------------------


def _who(user_id, user_group) -> str:
    if user_id and user_group:
        return f"{user_id} (group {user_group})"
    if user_id:
        return str(user_id)
    return f"group {user_group}" if user_group else "nobody"


def describe_event(kind: str, payload: dict) -> str:
    """One line of plain text (escaped wherever it is shown) for an event's payload."""
    p = payload or {}
    if kind == Kind.ASSIGNED:
        new = _who(p.get("new_user_id"), p.get("new_user_group"))
        if p.get("old_user_id") is None and p.get("old_user_group") is None:
            return f"to {new}"
        return f"{_who(p.get('old_user_id'), p.get('old_user_group'))} → {new}"
    if kind == Kind.CANCELLED:
        return str(p.get("message", ""))
    if kind == Kind.COMPLETED:
        return f"by {p.get('user_id')}"
    if kind == Kind.SAVED:
        return f"by {p.get('user_id')}: {json.dumps(p.get('results'), ensure_ascii=False, sort_keys=True)}"
    if kind in (Kind.COMMENT_ADDED, Kind.COMMENT_EDITED):
        return str(p.get("comment", ""))
    if kind == Kind.COMMENT_DELETED:
        return f"comment {p.get('user_comment_id')} of {p.get('user_id')} deleted"
    if kind == Kind.TASK_EXECUTED:
        action = p.get("action") or p.get("reminder") or "action"
        if isinstance(action, dict):
            action = action.get("type", "action")
        delivered = p.get("delivered_to") or []
        to = ", ".join(map(str, delivered)) if isinstance(delivered, list) else str(delivered)
        channels = p.get("channels") or []
        via = f" ({', '.join(map(str, channels))})" if isinstance(channels, list) and channels else ""
        return f"{action} delivered to {to or 'nobody'}{via}"
    return json.dumps(p, ensure_ascii=False, sort_keys=True)


def payload_items(payload: dict) -> list[tuple[str, str]]:
    """The payload as (key, text) pairs: strings as they are, anything else as JSON."""
    return [
        (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True))
        for key, value in (payload or {}).items()
    ]


# --- the filter ------------------------------------------------------------------------------


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self):
        super().__init__(format="%Y-%m-%dT%H:%M")


class AuditEventFilter(django_filters.FilterSet):
    """Filters of the event list and the CSV export. User and group are the run's current ones."""

    type = django_filters.ChoiceFilter(label="Event type", choices=Kind.choices, empty_label="Any event")
    actor = django_filters.CharFilter(label="Actor")
    task_type = django_filters.ChoiceFilter(
        label="Task type", field_name="user_task_run__user_task_def_name", choices=[], empty_label="Any task type"
    )
    user = django_filters.CharFilter(label="User", field_name="user_task_run__user_id")
    group = django_filters.CharFilter(label="Group", field_name="user_task_run__user_group")
    wf_run = django_filters.CharFilter(label="Workflow run", field_name="user_task_run__wf_run_id")
    since = django_filters.DateTimeFilter(label="From", field_name="time", lookup_expr="gte", widget=DateTimeLocalInput())
    until = django_filters.DateTimeFilter(label="To", field_name="time", lookup_expr="lte", widget=DateTimeLocalInput())

    class Meta:
        model = UserTaskEvent
        fields: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = UserTaskDef.objects.order_by("name").values_list("name", flat=True).distinct()
        self.filters["task_type"].extra["choices"] = [(name, name) for name in names]
        for form_field in self.form.fields.values():
            select = isinstance(form_field.widget, forms.Select)
            form_field.widget.attrs["class"] = "form-select form-select-sm" if select else "form-control form-control-sm"


def _filtered_events(request):
    """(filterset, queryset) for the request's filter; the queryset is None when it is invalid."""
    data = request.GET.copy()
    for key in ("older", "newer", "limit"):
        data.pop(key, None)
    filterset = AuditEventFilter(data, queryset=UserTaskEvent.objects.all())
    if not filterset.is_valid():
        return filterset, None
    return filterset, filterset.qs.order_by()


# --- the list's query plan -------------------------------------------------------------------
#
# Filters on the run (task type, user, group, workflow run) are on another table than the order
# (event time). Joined, PostgreSQL walks `ute_time_id` newest first and looks up each event's run
# until it has a page: quick when the matching runs are many and recent, seconds when they are few
# or old (a retired group's runs: 2.5 M events read at 1M runs). The other shape takes the page
# from the matching runs' events: `ute_run_time_id` (run, time, id) read alone, one descent per
# run, the newest (time, id) beyond the cursor kept — cost in proportion to the number of runs,
# whatever their age — and then reads the page's rows by primary key. Both give the same rows in
# the same order; which is cheaper is decided per request from three small index reads:
#   - the walk: the 50th newest matching run created before the cursor, and how many events that
#     pass the event filters (type, actor, time) lie between it and the cursor (a run's events
#     come after its creation, so the walk ends about there; counted up to WALK_MAX);
#   - the runs: how many runs match (counted up to what the walk would cost, at most RUNS_MAX).
# Neither estimate affects which rows are shown, only how they are found.

RUN_FILTERS = {"task_type": "user_task_def_name", "user": "user_id", "group": "user_group", "wf_run": "wf_run_id"}
EVENT_FILTERS = {"type": "type", "actor": "actor", "since": "time__gte", "until": "time__lte"}
WALK_MAX = 10000  # events: beyond this the walk is "long"
RUNS_MAX = 8000  # runs read run first when the walk is long (about 3 index pages each)
WALK_COST = 3  # an event walked (and its run looked up) costs about as much as this many runs read run first


@dataclass
class ListQuery:
    """The event list's query: `events` alone, or `events` of the runs of `runs` (run first)."""

    events: object
    runs: object = None


def _list_query(filterset, before: datetime | None = None) -> ListQuery:
    """The cheaper shape for the filter's page that ends at `before` (None: the newest)."""
    data = filterset.form.cleaned_data
    run_filter = {column: data[name] for name, column in RUN_FILTERS.items() if data.get(name) not in (None, "")}
    joined = ListQuery(filterset.qs.order_by())
    if not run_filter:
        return joined
    runs = UserTaskRun.objects.filter(**run_filter).order_by()
    end = min((t for t in (before, data.get("until")) if t), default=None)
    recent = runs.filter(scheduled_time__lte=end) if end else runs
    created = list(recent.order_by("-scheduled_time", "-id").values_list("scheduled_time", flat=True)[:PAGE_SIZE])
    event_filter = {lookup: data[name] for name, lookup in EVENT_FILTERS.items() if data.get(name) not in (None, "")}
    events = UserTaskEvent.objects.filter(**event_filter).order_by()
    walked = events
    if before:
        walked = walked.filter(time__lte=before)
    if len(created) == PAGE_SIZE:
        walked = walked.filter(time__gte=created[-1])
    walk = walked.values("id")[: WALK_MAX + 1].count()
    limit = RUNS_MAX if walk > WALK_MAX else min(walk * WALK_COST, RUNS_MAX)
    if runs.values("id")[: limit + 1].count() > limit:
        return joined
    return ListQuery(events, runs.values("id"))


def _of_runs(events, runs):
    """`events` whose run is in `runs`. On PostgreSQL as `= ANY(ARRAY(subquery))`: the planner
    cannot turn that into the join it misjudges, and scans the (run, time, id) index per run."""
    if connection.vendor != "postgresql":
        return events.filter(user_task_run__in=runs)
    return events.filter(_AnyOfArray(F("user_task_run_id"), Subquery(runs)))


class _AnyOfArray(Func):
    """`column = ANY(ARRAY(subquery))` (PostgreSQL)."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        column, subquery = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        subquery_sql, subquery_params = compiler.compile(subquery)  # "(SELECT …)"
        return f"{column_sql} = ANY(ARRAY{subquery_sql})", (*column_params, *subquery_params)


# --- keyset pages ----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)


def _cursor(event: UserTaskEvent) -> str:
    micros = (event.time - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{event.pk}"


def _parse_cursor(value: str) -> tuple[datetime, int]:
    micros, _, pk = value.partition(".")
    return _EPOCH + timedelta(microseconds=int(micros)), int(pk)


@dataclass
class EventPage:
    events: list
    older: str | None = None  # cursor of the next page towards older events
    newer: str | None = None  # cursor of the previous page, towards newer events


def _page(query: ListQuery, *, older: str | None, newer: str | None, size: int) -> EventPage:
    """Newest first by (time, id); a page starts after a cursor — one index range, no OFFSET."""
    qs, order = query.events, ("-time", "-id")
    if newer:
        at, pk = _parse_cursor(newer)
        qs, order = qs.filter(time__gte=at).filter(Q(time__gt=at) | Q(pk__gt=pk)), ("time", "id")
    elif older:
        at, pk = _parse_cursor(older)
        qs = qs.filter(time__lte=at).filter(Q(time__lt=at) | Q(pk__lt=pk))
    qs = qs.order_by(*order)
    if query.runs is not None:
        ids = _of_runs(qs, query.runs).values("id")[: size + 1]
        qs = UserTaskEvent.objects.filter(pk__in=ids).order_by(*order)
    rows = list(qs.select_related("user_task_run__user_task_def")[: size + 1])
    more, rows = len(rows) > size, rows[:size]
    if newer:
        rows = rows[::-1]
        return EventPage(rows, older=_cursor(rows[-1]) if rows else None, newer=_cursor(rows[0]) if more else None)
    return EventPage(rows, older=_cursor(rows[-1]) if more else None, newer=_cursor(rows[0]) if older and rows else None)


def _page_size(value: str | None) -> int:
    if not value:
        return PAGE_SIZE
    size = int(value)
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(size)
    return size


# --- views -----------------------------------------------------------------------------------


@manager_required
def event_list(request):
    """Every event across runs, newest first, filtered and keyset-paged."""
    filterset, qs = _filtered_events(request)
    page, status = EventPage([]), 200
    if qs is None:
        status = 400
    else:
        try:
            size = _page_size(request.GET.get("limit"))
            older, newer = request.GET.get("older"), request.GET.get("newer")
            query = _list_query(filterset, before=_parse_cursor(older)[0] if older and not newer else None)
            page = _page(query, older=older, newer=newer, size=size)
        except (ValueError, OverflowError):
            return HttpResponseBadRequest("Invalid page: follow the Newer and Older links.")
    rows = [(event, describe_event(event.type, event.payload)) for event in page.events]
    return render(
        request,
        "usertasks/audit/events.html",
        {"filterset": filterset, "filter_qs": filterset.data.urlencode(), "page": page, "rows": rows, "tab": "events"},
        status=status,
    )


@manager_required
def run_timeline(request, wf_run_id: str, user_task_guid: str):
    """One run and its events in order, with the time since the run was created."""
    run = get_object_or_404(
        UserTaskRun.objects.select_related("user_task_def", "wf_run"), wf_run_id=wf_run_id, user_task_guid=user_task_guid
    )
    events = [
        {
            "event": event,
            "details": describe_event(event.type, event.payload),
            "payload": payload_items(event.payload),
            "elapsed": human_duration(event.time - run.scheduled_time),
        }
        for event in run.events.order_by("id")
    ]
    return render(
        request,
        "usertasks/audit/run.html",
        {
            "run": run,
            "events": events,
            "json": {
                name: json.dumps(getattr(run, name), indent=2, ensure_ascii=False)
                for name in ("results", "output", "failure")
                if getattr(run, name)
            },
            "tab": "events",
        },
    )


# --- CSV export ------------------------------------------------------------------------------

CSV_HEADER = [
    "time", "event_id", "type", "actor", "wf_run_id", "user_task_guid", "user_task_def_name",
    "user_task_def_version", "run_user_id", "run_user_group", "details", "payload",
]  # fmt: skip
CSV_COLUMNS = (
    "time", "id", "type", "actor", "user_task_run__wf_run_id", "user_task_run__user_task_guid",
    "user_task_run__user_task_def_name", "user_task_run__user_task_def__version", "user_task_run__user_id",
    "user_task_run__user_group", "payload",
)  # fmt: skip
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A cell as text, neutralised (a leading ') where a spreadsheet would read a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_chunks(qs):
    """The CSV, about 64 KB at a time; rows come from the database a chunk at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for when, pk, kind, actor, wf_run_id, guid, def_name, version, user_id, user_group, payload in qs.iterator(
        chunk_size=EXPORT_CHUNK_SIZE
    ):
        writer.writerow(
            [
                csv_cell(value)
                for value in (
                    when.isoformat(), pk, kind, actor, wf_run_id, guid, def_name, version, user_id, user_group,
                    describe_event(kind, payload), json.dumps(payload, ensure_ascii=False, sort_keys=True),
                )  # fmt: skip
            ]
        )
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@manager_required
def export_csv(request):
    """The events of the current filter as CSV, newest first, streamed: nothing is held in memory."""
    filterset, qs = _filtered_events(request)
    if qs is None:
        errors = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in filterset.errors.items())
        return HttpResponseBadRequest(f"Invalid filter: {errors}", content_type="text/plain; charset=utf-8")
    rows = qs.order_by("-time", "-id").values_list(*CSV_COLUMNS)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return StreamingHttpResponse(
        _csv_chunks(rows),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-events-{stamp}.csv"'},
    )


# --- dashboard -------------------------------------------------------------------------------


def human_duration(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round axis ticks from 0 to at least `top` (steps of 1, 2 or 5 × 10ⁿ, never below 1)."""
    raw = max(top / count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(0, max(math.ceil(top / step), 1) + 1)]


@dataclass
class Period:
    days: int
    first: date
    start: datetime

    @classmethod
    def last(cls, days: int) -> "Period":
        """The last `days` calendar days, today included."""
        first = timezone.localdate() - timedelta(days=days - 1)
        return cls(days, first, timezone.make_aware(datetime.combine(first, time.min)))

    @property
    def dates(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


# Chart geometry in SVG user units, about the pixels of a desktop layout: the flow chart spans
# the page, the bar charts half of it. An SVG shrinks with a narrower screen, never grows.
WIDTH, LEFT, RIGHT = 1080, 48, 16
BAR_WIDTH = 520
OPEN_COLOUR, DONE_COLOUR, CANCELLED_COLOUR = "#0d6efd", "#198754", "#adb5bd"
MEDIAN_COLOUR, P90_COLOUR = "#6610f2", "#c29ffa"


def _fmt(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


@dataclass
class FlowChart:
    """Cumulative flow: how many runs were open, done and cancelled at the end of each day."""

    days: list = field(default_factory=list)  # [(date, open, done, cancelled)]
    created: int = 0  # in the period
    completed: int = 0
    cancelled: int = 0
    height: int = 250
    top: int = 10
    bottom: int = 222
    bands: list = field(default_factory=list)  # [(label, colour, polygon points)]
    y_ticks: list = field(default_factory=list)  # [(y, label)]
    x_labels: list = field(default_factory=list)  # [(x, label)]

    @property
    def empty(self) -> bool:
        return not any(o or d or c for _, o, d, c in self.days)

    @property
    def now(self) -> tuple:
        return self.days[-1]


def flow_chart(period: Period) -> FlowChart:
    """Five aggregate queries, whatever the number of runs."""
    runs = UserTaskRun.objects.order_by()
    created_before = runs.filter(scheduled_time__lt=period.start).count()
    created = dict(
        runs.filter(scheduled_time__gte=period.start)
        .annotate(day=TruncDate("scheduled_time"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    finals = UserTaskEvent.objects.filter(type__in=[Kind.COMPLETED, Kind.CANCELLED]).order_by()
    before = finals.filter(time__lt=period.start).aggregate(
        done=Count("id", filter=Q(type=Kind.COMPLETED)), cancelled=Count("id", filter=Q(type=Kind.CANCELLED))
    )
    finished = {
        (day, kind): n
        for day, kind, n in finals.filter(time__gte=period.start)
        .annotate(day=TruncDate("time"))
        .values("day", "type")
        .annotate(n=Count("id"))
        .values_list("day", "type", "n")
    }
    chart = FlowChart()
    total, done, cancelled = created_before, before["done"], before["cancelled"]
    for day in period.dates:
        chart.created += created.get(day, 0)
        chart.completed += finished.get((day, Kind.COMPLETED), 0)
        chart.cancelled += finished.get((day, Kind.CANCELLED), 0)
        total += created.get(day, 0)
        done += finished.get((day, Kind.COMPLETED), 0)
        cancelled += finished.get((day, Kind.CANCELLED), 0)
        chart.days.append((day, max(total - done - cancelled, 0), done, cancelled))
    if chart.empty:
        return chart

    ticks = nice_ticks(max(o + d + c for _, o, d, c in chart.days))
    scale = (chart.bottom - chart.top) / ticks[-1]
    n, plot = len(chart.days), WIDTH - LEFT - RIGHT
    step = plot / n
    # One column per day, stacked from the bottom: done, cancelled, open.
    xs = [LEFT + step * i for i in range(n + 1)]
    stacks = [(0, d, d + c, d + c + o) for _, o, d, c in chart.days]
    for level, (label, colour) in enumerate(
        (("Done", DONE_COLOUR), ("Cancelled", CANCELLED_COLOUR), ("Open", OPEN_COLOUR))
    ):
        # Left to right along the band's top edge, then right to left along its bottom edge.
        points = []
        for i, stack in enumerate(stacks):
            top = _fmt(chart.bottom - stack[level + 1] * scale)
            points += [f"{_fmt(xs[i])},{top}", f"{_fmt(xs[i + 1])},{top}"]
        for i, stack in reversed(list(enumerate(stacks))):
            base = _fmt(chart.bottom - stack[level] * scale)
            points += [f"{_fmt(xs[i + 1])},{base}", f"{_fmt(xs[i])},{base}"]
        chart.bands.append((label, colour, " ".join(points)))
    chart.y_ticks = [(_fmt(chart.bottom - t * scale), f"{t:g}") for t in ticks]
    every = max(1, math.ceil(n / 8))
    chart.x_labels = [
        (_fmt(xs[i] + step / 2), day.strftime("%b %d")) for i, (day, *_) in enumerate(chart.days) if i % every == 0
    ]
    return chart


@dataclass
class DurationRow:
    task_type: str
    count: int
    median: timedelta
    p90: timedelta
    y: int = 0
    median_width: str = ""
    p90_width: str = ""
    median_end: str = ""
    p90_end: str = ""

    @property
    def median_text(self) -> str:
        return human_duration(self.median)

    @property
    def p90_text(self) -> str:
        return human_duration(self.p90)


def _order_statistics(n: int, quantiles=(0.5, 0.9)) -> dict[float, tuple[int, int, float]]:
    """Where each quantile lies: linear interpolation between two ranks (as percentile_cont)."""
    positions = {}
    for q in quantiles:
        at = q * (n - 1)
        low = math.floor(at)
        positions[q] = (low, min(low + 1, n - 1), at - low)
    return positions


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY a duration)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def __init__(self, fraction: float, expression, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def completion_times(period: Period) -> list[DurationRow]:
    """Median and p90 of creation → COMPLETED per task type, over runs completed in the period.

    On PostgreSQL one aggregate query (percentile_cont). Elsewhere the durations stream from the
    database in order and only the ranks needed are kept, so memory does not grow with the
    number of runs.
    """
    completed = UserTaskEvent.objects.filter(type=Kind.COMPLETED, time__gte=period.start).order_by()
    name = "user_task_run__user_task_def_name"
    if connection.vendor == "postgresql":  # one pass, in the database
        took = F("time") - F("user_task_run__scheduled_time")
        return [
            DurationRow(task_type, n, median, p90)
            for task_type, n, median, p90 in completed.values(name)
            .annotate(n=Count("id"), median=PercentileCont(0.5, took), p90=PercentileCont(0.9, took))
            .order_by(name)
            .values_list(name, "n", "median", "p90")
        ]
    counts = dict(completed.values(name).annotate(n=Count("id")).values_list(name, "n"))
    if not counts:
        return []
    wanted = {task_type: _order_statistics(n) for task_type, n in counts.items()}
    ranks = {task_type: {r for low, high, _ in w.values() for r in (low, high)} for task_type, w in wanted.items()}
    picked: dict[str, dict[int, timedelta]] = {task_type: {} for task_type in counts}
    durations = (
        completed.annotate(took=F("time") - F("user_task_run__scheduled_time"))
        .order_by(name, "took")
        .values_list(name, "took")
    )
    rank, current = 0, None
    for task_type, took in durations.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        if task_type != current:
            rank, current = 0, task_type
        if rank in ranks[task_type]:
            picked[task_type][rank] = took
        rank += 1
    rows = []
    for task_type in sorted(counts):
        value = {}
        for q, (low, high, fraction) in wanted[task_type].items():
            a, b = picked[task_type][low], picked[task_type][high]
            value[q] = a + (b - a) * fraction
        rows.append(DurationRow(task_type, counts[task_type], value[0.5], value[0.9]))
    return rows


@dataclass
class BarChart:
    rows: list
    row_height: int
    width: int = BAR_WIDTH
    label_width: int = 170
    height: int = 0


def duration_chart(rows: list[DurationRow]) -> BarChart:
    chart = BarChart(rows, row_height=48)
    if not rows:
        return chart
    plot = chart.width - chart.label_width - 84  # room for the value on the right of each bar
    longest = max(row.p90 for row in rows).total_seconds() or 1
    for i, row in enumerate(rows):
        row.y = 8 + i * chart.row_height
        median = max(plot * row.median.total_seconds() / longest, 1)
        p90 = max(plot * row.p90.total_seconds() / longest, 1)
        row.median_width, row.p90_width = _fmt(median), _fmt(p90)
        row.median_end = _fmt(chart.label_width + median + 6)
        row.p90_end = _fmt(chart.label_width + p90 + 6)
    chart.height = 12 + len(rows) * chart.row_height
    return chart


@dataclass
class AssigneeRow:
    user_id: str | None
    open: int
    done: int
    cancelled: int
    y: int = 0
    segments: list = field(default_factory=list)  # [(x, width, colour, label, n)]
    total_x: str = ""

    @property
    def total(self) -> int:
        return self.open + self.done + self.cancelled


def assignee_chart(period: Period) -> BarChart:
    """Runs created in the period per current assignee (the busiest first; unassigned runs
    after the users with as many), by status."""
    counts = (
        UserTaskRun.objects.filter(scheduled_time__gte=period.start)
        .values("user_id")
        .annotate(
            open=Count("id", filter=Q(status__in=UserTaskRun.OPEN_STATUSES)),
            done=Count("id", filter=Q(status=Status.DONE)),
            cancelled=Count("id", filter=Q(status=Status.CANCELLED)),
            total=Count("id"),
        )
        .order_by("-total", F("user_id").asc(nulls_last=True))[:TOP_ASSIGNEES]
    )
    chart = BarChart([AssigneeRow(c["user_id"], c["open"], c["done"], c["cancelled"]) for c in counts], row_height=28)
    if not chart.rows:
        return chart
    plot = chart.width - chart.label_width - 44
    most = max(row.total for row in chart.rows)
    for i, row in enumerate(chart.rows):
        row.y = 6 + i * chart.row_height
        x = float(chart.label_width)
        for label, colour, n in (
            ("Open", OPEN_COLOUR, row.open),
            ("Done", DONE_COLOUR, row.done),
            ("Cancelled", CANCELLED_COLOUR, row.cancelled),
        ):
            if n:
                width = plot * n / most
                row.segments.append((_fmt(x), _fmt(width), colour, label, n))
                x += width
        row.total_x = _fmt(x + 6)
    chart.height = 12 + len(chart.rows) * chart.row_height
    return chart


@manager_required
def dashboard(request):
    """Charts over the last 7, 30 (default), 90 or 365 days, drawn here as inline SVG."""
    days = request.GET.get("days", "30")
    days = int(days) if days.isdigit() and int(days) in DASHBOARD_PERIODS else 30
    period = Period.last(days)
    return render(
        request,
        "usertasks/audit/dashboard.html",
        {
            "period": period,
            "periods": DASHBOARD_PERIODS,
            "flow": flow_chart(period),
            "durations": duration_chart(completion_times(period)),
            "assignees": assignee_chart(period),
            "colours": {"open": OPEN_COLOUR, "done": DONE_COLOUR, "cancelled": CANCELLED_COLOUR,
                        "median": MEDIAN_COLOUR, "p90": P90_COLOUR},  # fmt: skip
            "width": WIDTH,
            "left": LEFT,
            "right_edge": WIDTH - RIGHT,
            "tab": "dashboard",
        },
    )


app_name = "audit"
urlpatterns = [
    path("", event_list, name="events"),
    path("export.csv", export_csv, name="export"),
    path("dashboard/", dashboard, name="dashboard"),
    path("runs/<str:wf_run_id>/<str:user_task_guid>/", run_timeline, name="run"),
]
