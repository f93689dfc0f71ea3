"""The domain model of DESIGN §2. Only usertasks/services.py writes these tables."""

from itertools import combinations
from typing import NamedTuple

from django.db import models
from django.db.models import Q
from django.utils import timezone

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
        ]

    def __str__(self) -> str:
        return f"{self.type} by {self.actor}"
