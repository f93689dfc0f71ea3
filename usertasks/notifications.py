"""In-app notifications and reminder emails (DESIGN §5): the list page at /notifications/, marking
read, the unread count for the navbar badge (a context processor), and the reminder email.

Notifications are created by services.remind_user_task_run; this module only shows them, marks
them read (the reader's own rows, not audited domain state) and builds the emails it sends.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.mail import EmailMessage, get_connection
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_POST

from .models import Notification, UserTaskRun

PAGE_SIZE = 50


def task_path(run: UserTaskRun) -> str:
    """The task page of a run (DESIGN §8)."""
    return f"/tasks/{run.wf_run_id}/{run.user_task_guid}/"


def task_url(run: UserTaskRun) -> str:
    return settings.TASKMANAGER_BASE_URL + task_path(run)


def reminder_message(run: UserTaskRun) -> str:
    """The one-line text of a reminder, in-app and as the email's first line."""
    if run.user_id is not None:
        return f"Reminder: the {run.user_task_def_name} task {run.wf_run_id}/{run.user_task_guid} is assigned to you."
    return (
        f"Reminder: the {run.user_task_def_name} task {run.wf_run_id}/{run.user_task_guid} "
        f"is waiting for someone in {run.user_group} to claim it."
    )


def reminder_email(run: UserTaskRun, username: str, address: str) -> EmailMessage:
    """One plain-text email per recipient (recipients do not see each other)."""
    lines = [f"Hello {username},", "", reminder_message(run), "", f"Open it: {task_url(run)}"]
    if run.notes:
        lines += ["", "Notes:", run.notes]
    lines += ["", "-- Taskmanager"]
    return EmailMessage(
        subject=f"Reminder: {run.user_task_def_name} task waiting for you",
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )


def send_emails(messages: list[EmailMessage]) -> None:
    """Send after commit (never inside a transaction); a failure is logged by on_commit(robust)."""
    if messages:
        get_connection().send_messages(messages)


# --- the navbar badge -------------------------------------------------------------------------


def unread_count(request) -> dict:
    """Context processor: `notifications_unread_count`, counted only if a template uses it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "notifications_unread_count": SimpleLazyObject(
            lambda: Notification.objects.filter(user=user, read_at__isnull=True).count()
        )
    }


# --- pages ------------------------------------------------------------------------------------


@login_required
@require_GET
def notification_list(request):
    """The user's notifications, newest first, in keyset pages ("Older" carries the last one's id)."""
    notifications = Notification.objects.filter(user=request.user).select_related("user_task_run")
    before = request.GET.get("before", "")
    cursor = notifications.filter(pk=int(before)).values("created_at", "id").first() if before.isdigit() else None
    if cursor is not None:
        notifications = notifications.filter(created_at__lte=cursor["created_at"]).filter(
            Q(created_at__lt=cursor["created_at"]) | Q(id__lt=cursor["id"])
        )
    rows = list(notifications.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    page, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    for notification in page:
        notification.task_path = task_path(notification.user_task_run)
    context = {"notifications": page, "older": page[-1].pk if more else None, "is_first_page": cursor is None}
    return render(request, "usertasks/notification_list.html", context)


@login_required
@require_POST
def open_notification(request, pk: int):
    """Mark one of the user's notifications read and go to its task."""
    notification = get_object_or_404(Notification.objects.select_related("user_task_run"), pk=pk, user=request.user)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return redirect(task_path(notification.user_task_run))


@login_required
@require_POST
def mark_all_read(request):
    Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
    return redirect("notifications:list")


app_name = "notifications"
urlpatterns = [
    path("", notification_list, name="list"),
    path("<int:pk>/open/", open_notification, name="open"),
    path("read-all/", mark_all_read, name="read_all"),
]
