"""The domain model of DESIGN §2. Only usertasks/services.py writes these tables."""

import functools
import hashlib
import secrets
from datetime import UTC
from itertools import combinations
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .variables import TYPE_CHOICES


class UserTaskRunId(NamedTuple):
    wf_run_id: str
    user_task_guid: str


class UserTaskDef(models.Model):
    """A versioned, immutable form definition. Versions start at 0."""

    name = models.CharField(max_length=128)
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True, default="")
    # Timed hooks (DESIGN §5) copied onto every new run of this version.
    default_actions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "UserTaskDef"
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="usertaskdef_name_version_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class UserTaskField(models.Model):
    user_task_def = models.ForeignKey(UserTaskDef, on_delete=models.CASCADE, related_name="fields")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=128)
    display_name = models.CharField(max_length=256, blank=True, default="")
    description = models.TextField(blank=True, default="")
    type = models.CharField(max_length=8, choices=TYPE_CHOICES)
    required = models.BooleanField(default=False)

    class Meta:
        verbose_name = "UserTaskField"
        ordering = ["user_task_def", "position"]
        constraints = [
            models.UniqueConstraint(fields=["user_task_def", "name"], name="usertaskfield_name_uniq"),
            models.UniqueConstraint(fields=["user_task_def", "position"], name="usertaskfield_pos_uniq"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.display_name or self.name


class WfRun(models.Model):
    """The workflow run whose thread is blocked on one or more UserTaskRuns."""

    id = models.CharField(primary_key=True, max_length=128)
    callback_url = models.URLField(max_length=2000, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "WfRun"

    def __str__(self) -> str:
        return self.id


# Every non-empty combination of the four equality filters of search gets an index that ends in
# (scheduled_time, id): each search is then one index range scan, first page or deep, in either
# direction. Names are short because PostgreSQL and Django cap them at 30 characters.
SEARCH_FILTER_COLUMNS = {"status": "s", "user_task_def_name": "t", "user_id": "u", "user_group": "g"}


def _search_indexes() -> list[models.Index]:
    indexes = [models.Index(fields=["scheduled_time", "id"], name="utr_search_time")]
    columns = list(SEARCH_FILTER_COLUMNS)
    for size in range(1, len(columns) + 1):
        for combo in combinations(columns, size):
            suffix = "".join(SEARCH_FILTER_COLUMNS[c] for c in combo)
            indexes.append(models.Index(fields=[*combo, "scheduled_time", "id"], name=f"utr_search_{suffix}"))
    return indexes


class UserTaskRun(models.Model):
    class Status(models.TextChoices):
        UNASSIGNED = "UNASSIGNED"
        ASSIGNED = "ASSIGNED"
        DONE = "DONE"
        CANCELLED = "CANCELLED"

    OPEN_STATUSES = (Status.UNASSIGNED, Status.ASSIGNED)

    wf_run = models.ForeignKey(WfRun, on_delete=models.PROTECT, related_name="user_task_runs")
    user_task_guid = models.CharField(max_length=32)
    user_task_def = models.ForeignKey(UserTaskDef, on_delete=models.PROTECT, related_name="runs")
    # Copied from the def so that search by task type is one index scan across versions.
    user_task_def_name = models.CharField(max_length=128)
    status = models.CharField(max_length=10, choices=Status.choices)
    user_id = models.CharField(max_length=256, null=True, blank=True)
    user_group = models.CharField(max_length=256, null=True, blank=True)
    results = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True, default="")
    scheduled_time = models.DateTimeField(default=timezone.now)
    epoch = models.PositiveIntegerField(default=0)
    on_cancellation_exception_name = models.CharField(max_length=128, null=True, blank=True)
    actions = models.JSONField(default=list, blank=True)
    output = models.JSONField(null=True, blank=True)
    failure = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "UserTaskRun"
        permissions = [
            ("assign_usertaskrun", "Can reassign user task runs to other users and groups"),
            ("cancel_usertaskrun", "Can cancel user task runs"),
            ("view_audit", "Can view the audit trail of every user task run"),
            ("act_for_others", "Can act on behalf of any user (workflow engines, service accounts)"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["wf_run", "user_task_guid"], name="utr_id_uniq"),
            models.CheckConstraint(
                condition=Q(status__in=["UNASSIGNED", "ASSIGNED", "DONE", "CANCELLED"]),
                name="utr_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(user_id__isnull=False) | Q(user_group__isnull=False), name="utr_owner_not_both_null"
            ),
            models.CheckConstraint(condition=~Q(status="ASSIGNED") | Q(user_id__isnull=False), name="utr_assigned_has_user"),
            models.CheckConstraint(
                condition=~Q(status="UNASSIGNED") | Q(user_id__isnull=True, user_group__isnull=False),
                name="utr_unassigned_has_group_only",
            ),
            models.CheckConstraint(condition=~Q(user_id=""), name="utr_user_id_not_blank"),
            models.CheckConstraint(condition=~Q(user_group=""), name="utr_user_group_not_blank"),
            models.CheckConstraint(condition=~Q(status="DONE") | Q(output__isnull=False), name="utr_done_has_output"),
            models.CheckConstraint(
                condition=~Q(status="CANCELLED") | Q(failure__isnull=False), name="utr_cancelled_has_failure"
            ),
        ]
        indexes = _search_indexes()

    def __str__(self) -> str:
        return f"{self.wf_run_id}/{self.user_task_guid}"

    @property
    def run_id(self) -> UserTaskRunId:
        return UserTaskRunId(self.wf_run_id, self.user_task_guid)

    @property
    def is_final(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.CANCELLED)


class UserTaskEvent(models.Model):
    """One entry of a run's append-only audit trail; ordered per run by id."""

    class Kind(models.TextChoices):
        ASSIGNED = "ASSIGNED"
        TASK_EXECUTED = "TASK_EXECUTED"
        SAVED = "SAVED"
        CANCELLED = "CANCELLED"
        COMPLETED = "COMPLETED"
        COMMENT_ADDED = "COMMENT_ADDED"
        COMMENT_EDITED = "COMMENT_EDITED"
        COMMENT_DELETED = "COMMENT_DELETED"

    user_task_run = models.ForeignKey(UserTaskRun, on_delete=models.PROTECT, related_name="events")
    time = models.DateTimeField(default=timezone.now)
    type = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.CharField(max_length=256)
    payload = models.JSONField(default=dict)

    class Meta:
        verbose_name = "UserTaskEvent"
        ordering = ["user_task_run", "id"]
        indexes = [
            models.Index(fields=["user_task_run", "id"], name="ute_run_id"),
            models.Index(fields=["time", "id"], name="ute_time_id"),
            models.Index(fields=["type", "time", "id"], name="ute_type_time_id"),
            models.Index(fields=["actor", "time", "id"], name="ute_actor_time_id"),
            # The audit list filtered by fields of the run: the matching runs' events, newest
            # first, read from this index alone (audit._list_query, "run first").
            models.Index(fields=["user_task_run", "time", "id"], name="ute_run_time_id"),
        ]

    def __str__(self) -> str:
        return f"{self.type} by {self.actor}"


class ApiToken(models.Model):
    """A bearer token for the JSON API (DESIGN §4). Only a SHA-256 hash of the secret is stored:
    the secret is shown once, by `manage.py create_api_token`, and cannot be recovered."""

    PREFIX = "tm_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, default="", help_text="What the token is for.")
    # The first characters of the secret, to tell tokens apart; far too short to be used as one.
    token_prefix = models.CharField(max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set to revoke the token.")

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        label = f" ({self.name})" if self.name else ""
        return f"{self.token_prefix}… of {self.user}{label}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["ApiToken", str]:
        """A new token for the user; returns the row and the secret (shown once, never stored)."""
        secret = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, token_prefix=secret[: len(cls.PREFIX) + 6], token_hash=cls.hash_secret(secret)
        )
        return token, secret

    @classmethod
    def authenticate(cls, secret: str):
        """The active user the secret belongs to, or None; records the use (at most once a minute).

        Every API request comes here, so it is one hand-written query (the ORM spends ~1 ms of
        CPU building the same join, raw SQL ~0.2 ms): the user with its username and flags (other
        fields load on access) and the token's id and last use as extra attributes."""
        user = next(iter(get_user_model().objects.raw(_authenticate_sql(), [cls.hash_secret(secret), True])), None)
        if user is None:
            return None
        now = timezone.now()
        last_used_at = user.token_last_used_at
        if isinstance(last_used_at, str):  # SQLite hands extra columns of a raw query over unconverted
            last_used_at = parse_datetime(last_used_at)
        if last_used_at is not None and timezone.is_naive(last_used_at):
            last_used_at = timezone.make_aware(last_used_at, UTC)
        if last_used_at is None or (now - last_used_at).total_seconds() >= 60:
            cls.objects.filter(pk=user.token_id).update(last_used_at=now)
        return user


@functools.cache
def _authenticate_sql() -> str:
    User = get_user_model()
    user, token = User._meta, ApiToken._meta

    def column(meta, name: str) -> str:
        return connection.ops.quote_name(meta.get_field(name).column)

    q = connection.ops.quote_name
    return (
        f"SELECT u.{column(user, user.pk.name)}, u.{column(user, User.USERNAME_FIELD)}, u.{column(user, 'is_superuser')},"
        f" u.{column(user, 'is_active')}, t.{column(token, 'id')} AS token_id,"
        f" t.{column(token, 'last_used_at')} AS token_last_used_at"
        f" FROM {q(token.db_table)} t INNER JOIN {q(user.db_table)} u ON u.{column(user, user.pk.name)} = t.{column(token, 'user')}"
        f" WHERE t.{column(token, 'token_hash')} = %s AND t.{column(token, 'revoked_at')} IS NULL"
        f" AND u.{column(user, 'is_active')} = %s"
    )


# --- timers, workflow callbacks and notifications (DESIGN §5, §6) ------------------------------


class ScheduledAction(models.Model):
    """One scheduling of one timed hook of a run: the durable source of truth of a timer.

    Written by the services in the transaction that schedules it (start, assignment); fired at
    most once by usertasks/hooks.py, which claims the row under a lock. The django-tasks job
    whose id is `trigger_id` only wakes a worker at `due_at`; the sweep replaces a lost one.
    """

    class Outcome(models.TextChoices):
        EXECUTED = "EXECUTED", "executed"
        UNCHANGED = "UNCHANGED", "nothing to change"
        STALE = "STALE", "stale: the run was reassigned since"
        RUN_CLOSED = "RUN_CLOSED", "run already DONE or CANCELLED"
        FAILED = "FAILED", "refused by the service"

    user_task_run = models.ForeignKey(UserTaskRun, on_delete=models.CASCADE, related_name="scheduled_actions")
    action_index = models.PositiveIntegerField(help_text="Position of the action in the run's actions.")
    action = models.JSONField(help_text="The action as scheduled: type, hook, delay_seconds, user_id, user_group.")
    hook = models.CharField(max_length=16)
    epoch = models.PositiveIntegerField(help_text="The run's epoch when this was scheduled.")
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    trigger_id = models.UUIDField(null=True, blank=True, help_text="The django-tasks job that wakes a worker.")
    fired_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True, default="")
    detail = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "scheduled action"
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user_task_run", "action_index", "epoch"], name="sa_run_action_epoch_uniq"),
            models.CheckConstraint(condition=Q(hook__in=["ON_ARRIVAL", "ON_TASK_ASSIGNED"]), name="sa_hook_valid"),
        ]
        indexes = [
            # The sweep reads only unfired rows, oldest due first.
            models.Index(fields=["due_at", "id"], name="sa_unfired_due", condition=Q(fired_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.action.get('type')} {self.hook} +{self.action.get('delay_seconds')}s of run {self.user_task_run_id}"


class CallbackDelivery(models.Model):
    """The workflow's notification of one outcome (DESIGN §6): the exact body, signed and POSTed
    by the worker until a 2xx or the attempt limit. Delivery never touches the run."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        DELIVERED = "DELIVERED"
        FAILED = "FAILED"

    user_task_run = models.ForeignKey(UserTaskRun, on_delete=models.CASCADE, related_name="callback_deliveries")
    event = models.CharField(max_length=32)
    url = models.URLField(max_length=2000)
    # The raw body as it is sent and signed: the UserTaskRun JSON as of the event.
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker that is POSTing holds the delivery until then; a crashed one lets it go.
    claimed_until = models.DateTimeField(null=True, blank=True)
    trigger_id = models.UUIDField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "callback delivery"
        verbose_name_plural = "callback deliveries"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["next_attempt_at", "id"], name="cbd_pending_next", condition=Q(status="PENDING")),
        ]

    def __str__(self) -> str:
        return f"{self.event} of run {self.user_task_run_id} to {self.url}"


class CallbackAttempt(models.Model):
    """One POST of a CallbackDelivery: when, the HTTP status or the error."""

    delivery = models.ForeignKey(CallbackDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "callback attempt"
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="cba_delivery_number_uniq"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Notification(models.Model):
    """An in-app notification (a reminder) for one Django user about one run."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    user_task_run = models.ForeignKey(UserTaskRun, on_delete=models.CASCADE, related_name="notifications")
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="ntf_user_created"),
            models.Index(fields=["user"], name="ntf_user_unread", condition=Q(read_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"to {self.user_id}: {self.message[:40]}"
