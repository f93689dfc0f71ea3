"""Timed hooks (DESIGN §5) and workflow callbacks (DESIGN §6): scheduling, firing, delivery, sweep.

The durable truth is a row: a ScheduledAction per scheduled timer, a CallbackDelivery per outcome
to report. The services create those rows inside their own transactions (through
`schedule_actions` and `notify_workflow`); a django-tasks job, enqueued after commit with
`run_after`, is only the trigger that wakes a worker when the row is due (usertasks/tasks.py).
Firing claims the row under a lock, so duplicate triggers and several workers are harmless, and
acts through the services as `system`. django-tasks-db never re-runs a job whose worker died, so
`sweep` (run by `manage.py run_worker` at start and every minute) gives every due row whose
trigger is gone a new one: timers and callbacks run late rather than never.
"""

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from .actors import SYSTEM
from .exceptions import UserTaskError
from .models import CallbackAttempt, CallbackDelivery, ScheduledAction, UserTaskRun, WfRun
from .selectors import run_as_dict

logger = logging.getLogger(__name__)

ON_ARRIVAL = "ON_ARRIVAL"
ON_TASK_ASSIGNED = "ON_TASK_ASSIGNED"
Outcome = ScheduledAction.Outcome

EVENT_DONE = "USER_TASK_RUN_DONE"
EVENT_CANCELLED = "USER_TASK_RUN_CANCELLED"
SIGNATURE_HEADER = "X-Taskmanager-Signature"

# A row whose trigger was never enqueued (the process died between commit and enqueue) is
# given one by the sweep once it is this old, even if not due yet.
LOST_TRIGGER_AFTER = timedelta(seconds=10)
SWEEP_BATCH = 500
MAX_BACKOFF_SECONDS = 3600


def _tasks():
    # tasks.py imports this module; import it when first needed.
    from . import tasks

    return tasks


def _services():
    # services.py imports this module to schedule; firing calls back into it.
    from . import services

    return services


# --- scheduling (called by the services, inside their transaction) -----------------------------


def schedule_actions(run: UserTaskRun, *, on: tuple[str, ...]) -> list[ScheduledAction]:
    """Schedule the run's actions whose hook is in `on`, at the run's current epoch, each due
    `delay_seconds` from now. Must be called inside the caller's transaction; the trigger jobs
    are enqueued after it commits (a lost one is replaced by the sweep)."""
    now = timezone.now()
    rows = []
    for index, action in enumerate(run.actions or []):
        if not isinstance(action, dict) or action.get("hook", ON_ARRIVAL) not in on:
            continue
        delay = action.get("delay_seconds")
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
            logger.warning("run %s: skipping malformed action %s: %r", run.pk, index, action)
            continue
        rows.append(
            ScheduledAction.objects.create(
                user_task_run=run,
                action_index=index,
                action=action,
                hook=action.get("hook", ON_ARRIVAL),
                epoch=run.epoch,
                due_at=now + timedelta(seconds=delay),
                created_at=now,
            )
        )
    if rows:
        pending = [(row.pk, row.due_at) for row in rows]
        transaction.on_commit(lambda: _trigger_actions(pending), robust=True)
    return rows


def _trigger_actions(pending: list[tuple[int, object]]) -> None:
    fire = _tasks().fire_scheduled_action
    for pk, due_at in pending:
        result = fire.using(run_after=due_at).enqueue(pk)
        ScheduledAction.objects.filter(pk=pk).update(trigger_id=result.id)


# --- firing (called by the worker through usertasks/tasks.py) ----------------------------------


def fire(scheduled_action_id: int) -> str:
    """Fire one scheduled action at most once; returns its outcome, or "" when there was nothing
    to do (already fired, being fired by another worker, or not due yet).

    A run that is DONE/CANCELLED, or an ON_TASK_ASSIGNED action whose epoch has moved on, is
    marked fired without acting. A service that refuses (a domain error) marks it FAILED with the
    message; any other error rolls back and leaves the row for the sweep to retry.
    """
    with transaction.atomic():
        row = (
            ScheduledAction.objects.select_for_update(skip_locked=True)
            .filter(pk=scheduled_action_id, fired_at__isnull=True)
            .first()
        )
        if row is None:
            return ""
        now = timezone.now()
        if row.due_at > now:
            # Woken early (clock skew between hosts): wake again at the due time.
            transaction.on_commit(lambda: _trigger_actions([(row.pk, row.due_at)]), robust=True)
            return ""
        run = UserTaskRun.objects.select_for_update(of=("self",)).get(pk=row.user_task_run_id)
        if run.is_final:
            outcome, detail = Outcome.RUN_CLOSED, f"the run was already {run.status}"
        elif row.hook == ON_TASK_ASSIGNED and run.epoch != row.epoch:
            outcome, detail = Outcome.STALE, f"scheduled at epoch {row.epoch}; the run is at epoch {run.epoch}"
        else:
            try:
                outcome, detail = _execute(row, run)
            except UserTaskError as error:
                outcome, detail = Outcome.FAILED, f"{error.code}: {error.message}"
        row.fired_at = now
        row.outcome = outcome
        row.detail = detail
        row.save(update_fields=["fired_at", "outcome", "detail"])
    logger.info("scheduled action %s (%s %s) fired: %s %s", row.pk, row.action.get("type"), row.hook, outcome, detail)
    return outcome


def _execute(row: ScheduledAction, run: UserTaskRun) -> tuple[str, str]:
    services = _services()
    action = row.action
    kind = action.get("type")
    if kind == "REASSIGN":
        user_id, user_group = action.get("user_id"), action.get("user_group")
        if (run.user_id, run.user_group) == (user_id, user_group):
            # Also what stops a REASSIGN on ON_TASK_ASSIGNED from re-firing after its own assignment.
            return Outcome.UNCHANGED, "the run already has that user_id and user_group"
        services.assign_user_task_run(
            run_id=run.run_id, actor=SYSTEM, user_id=user_id, user_group=user_group, override_claim=True
        )
        return Outcome.EXECUTED, f"assigned to user_id={user_id} user_group={user_group}"
    if kind == "CANCEL":
        since = "arrival" if row.hook == ON_ARRIVAL else "assignment"
        message = f"UserTaskRun was cancelled: its deadline of {action.get('delay_seconds')} s after {since} passed"
        services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM, message=message)
        return Outcome.EXECUTED, message
    if kind == "REMINDER":
        delivered_to = services.remind_user_task_run(run_id=run.run_id, actor=SYSTEM, action=action)
        return Outcome.EXECUTED, "reminded " + (", ".join(delivered_to) or "nobody (no matching user)")
    return Outcome.FAILED, f"unknown action type {kind!r}"


# --- workflow callbacks ----------------------------------------------------------------------


def notify_workflow(run: UserTaskRun, event: str) -> CallbackDelivery | None:
    """Inside the transaction that made the run DONE or CANCELLED: when its WfRun has a
    callback_url, store the body (the run JSON as of now) and deliver it after commit."""
    if UserTaskRun.wf_run.is_cached(run):  # read with the locked run (services._locked)
        url = run.wf_run.callback_url
    else:
        url = WfRun.objects.filter(pk=run.wf_run_id).values_list("callback_url", flat=True).first()
    if not url:
        return None
    body = json.dumps({"event": event, "user_task_run": run_as_dict(run)}, cls=DjangoJSONEncoder)
    now = timezone.now()
    delivery = CallbackDelivery.objects.create(
        user_task_run=run, event=event, url=url, body=body, created_at=now, next_attempt_at=now
    )
    transaction.on_commit(lambda: _trigger_delivery(delivery.pk, now), robust=True)
    return delivery


def _trigger_delivery(pk: int, when) -> None:
    result = _tasks().deliver_callback.using(run_after=when).enqueue(pk)
    CallbackDelivery.objects.filter(pk=pk).update(trigger_id=result.id)


def sign(body: bytes, secret: str | None = None) -> str:
    """The X-Taskmanager-Signature value: sha256=<hex HMAC-SHA256 of the raw body>."""
    key = (settings.TASKMANAGER_CALLBACK_SECRET if secret is None else secret).encode()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def backoff_seconds(attempt: int) -> float:
    """Delay after the given failed attempt (1-based): base, 2×base, 4×base… capped at an hour."""
    base = float(settings.TASKMANAGER_CALLBACK_BACKOFF_SECONDS)
    return min(base * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def deliver(delivery_id: int) -> str:
    """Make the next attempt of a pending delivery, if it is due and no worker holds it.

    The HTTP request runs outside any transaction; the attempt row is written first (so a worker
    that dies mid-request leaves a trace and the attempt counts) and completed afterwards. On a
    2xx the delivery is DELIVERED; after TASKMANAGER_CALLBACK_MAX_ATTEMPTS it is FAILED; else the
    next attempt is scheduled with exponential backoff. Returns the delivery's status, or "".
    """
    timeout = float(settings.TASKMANAGER_CALLBACK_TIMEOUT_SECONDS)
    with transaction.atomic():
        delivery = (
            CallbackDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status=CallbackDelivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return ""
        now = timezone.now()
        if delivery.claimed_until is not None and delivery.claimed_until > now:
            return ""
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            when = delivery.next_attempt_at
            transaction.on_commit(lambda: _trigger_delivery(delivery_id, when), robust=True)
            return ""
        number = delivery.attempts.count() + 1
        attempt = CallbackAttempt.objects.create(
            delivery=delivery, number=number, attempted_at=now,
            error="no response recorded: the worker stopped during this attempt",
        )
        delivery.claimed_until = now + timedelta(seconds=timeout + 30)
        delivery.save(update_fields=["claimed_until"])

    status_code, error, duration_ms = _post(delivery, number, timeout)

    with transaction.atomic():
        delivery = CallbackDelivery.objects.select_for_update().get(pk=delivery_id)
        attempt.status_code, attempt.error, attempt.duration_ms = status_code, error, duration_ms
        attempt.save(update_fields=["status_code", "error", "duration_ms"])
        now = timezone.now()
        delivery.claimed_until = None
        if attempt.succeeded:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = CallbackDelivery.Status.DELIVERED, now, None
        elif number >= int(settings.TASKMANAGER_CALLBACK_MAX_ATTEMPTS):
            delivery.status, delivery.next_attempt_at = CallbackDelivery.Status.FAILED, None
        else:
            when = now + timedelta(seconds=backoff_seconds(number))
            delivery.next_attempt_at = when
            transaction.on_commit(lambda: _trigger_delivery(delivery_id, when), robust=True)
        delivery.save(update_fields=["status", "delivered_at", "next_attempt_at", "claimed_until"])
    logger.info("callback %s attempt %s to %s: %s %s", delivery_id, number, delivery.url, status_code or "", error)
    return delivery.status


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not a delivery: report the 3xx instead of re-sending the body elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(delivery: CallbackDelivery, number: int, timeout: float) -> tuple[int | None, str, int]:
    """POST the stored body; returns (HTTP status or None, error text, duration in ms)."""
    body = delivery.body.encode()
    secret = settings.TASKMANAGER_CALLBACK_SECRET
    if not secret:
        return None, "TASKMANAGER_CALLBACK_SECRET is not set: refusing to send an unsigned callback", 0
    request = urllib.request.Request(
        delivery.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Taskmanager-callbacks/1",
            SIGNATURE_HEADER: sign(body, secret),
            "X-Taskmanager-Event": delivery.event,
            "X-Taskmanager-Delivery": str(delivery.pk),
            "X-Taskmanager-Attempt": str(number),
        },
    )
    started = time.monotonic()
    status_code, error = None, ""
    try:
        with _opener.open(request, timeout=timeout) as response:
            status_code = response.status
            response.read(65536)
    except urllib.error.HTTPError as e:
        status_code = e.code
        error = f"HTTP {e.code} {e.reason}"
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        error = f"{type(reason).__name__}: {reason}"[:1000]
    duration_ms = int((time.monotonic() - started) * 1000)
    return status_code, error, duration_ms


# --- the sweep: give every due row whose trigger is gone a new one -----------------------------


def _live_triggers(trigger_ids: list) -> set:
    """The trigger ids among these that a worker will still pick up (status READY)."""
    ids = [t for t in trigger_ids if t is not None]
    if not ids:
        return set()
    return {str(i) for i in DBTaskResult.objects.filter(id__in=ids, status=TaskResultStatus.READY).values_list("id", flat=True)}


def _sweep_rows(queryset, retrigger) -> int:
    """Walk `queryset` (values pk, when, trigger_id) in pages; retrigger rows without a live trigger."""
    count, after = 0, None
    while True:
        page = queryset
        if after is not None:
            page = page.filter(pk__gt=after)
        rows = list(page.order_by("pk").values_list("pk", "when", "trigger_id")[:SWEEP_BATCH])
        if not rows:
            return count
        live = _live_triggers([t for _, _, t in rows])
        for pk, when, trigger_id in rows:
            if trigger_id is None or str(trigger_id) not in live:
                retrigger(pk, when)
                count += 1
        after = rows[-1][0]


def sweep() -> dict:
    """Re-enqueue due, unfired actions and due, pending callback deliveries whose trigger job is
    not waiting in the queue any more (its worker died, it failed, or it was never enqueued).
    Safe to run at any time and from several workers: firing and delivery claim their row."""
    now = timezone.now()
    actions = ScheduledAction.objects.filter(fired_at__isnull=True).filter(
        Q(due_at__lte=now) | Q(trigger_id__isnull=True, created_at__lte=now - LOST_TRIGGER_AFTER)
    ).annotate(when=F("due_at"))
    deliveries = (
        CallbackDelivery.objects.filter(status=CallbackDelivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .annotate(when=F("next_attempt_at"))
    )
    counts = {
        "scheduled_actions": _sweep_rows(actions, lambda pk, when: _trigger_actions([(pk, when)])),
        "callback_deliveries": _sweep_rows(deliveries, _trigger_delivery),
    }
    if any(counts.values()):
        logger.warning("sweep re-enqueued %(scheduled_actions)s timer(s) and %(callback_deliveries)s callback(s)", counts)
    return counts
