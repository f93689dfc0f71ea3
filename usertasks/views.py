"""The end-user web app: the inbox and the task page. Thin views: selector -> form -> service ->
redirect (PRG) with a message. The services decide every permission; the Actor helpers only
decide which buttons to render. A domain error re-renders the page with its message (or beside
the field) and the error's HTTP status, keeping what was typed."""

from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import prefetch_related_objects
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.text import Truncator
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from . import selectors, services
from .actors import PERM_VIEW_AUDIT, Actor
from .exceptions import InvalidArgument, NotFound, UserTaskError
from .filters import UserTaskRunFilter, inbox_tabs, tab_search
from .forms import CommentForm, UserTaskRunForm
from .models import UserTaskRun

PAGE_SIZE = 50
# The status badge's colour; the same as templates/usertasks/_status_badge.html (the task page's).
STATUS_BADGES = {"UNASSIGNED": "text-bg-warning", "ASSIGNED": "text-bg-primary", "DONE": "text-bg-success"}
_URL_SAFE = RFC3986_SUBDELIMS + "/~:@"  # what django.urls.reverse() leaves unquoted


@login_required
def inbox(request):
    actor = Actor.for_user(request.user)
    tabs = inbox_tabs(actor)
    tab = next((t for t in tabs if t.slug == request.GET.get("tab")), tabs[0])
    newest_first = request.GET.get("order") != "oldest"
    search = UserTaskRunFilter(request.GET)
    filters = search.search_arguments() if search.is_valid() else None
    page, status = None, 200
    scope = tab_search(tab, actor, filters) if filters is not None else None
    if filters is not None and scope is None:
        page = selectors.SearchPage(results=[], bookmark=None)  # the filters contradict the tab
    elif scope is not None:
        try:
            page = selectors.search_user_task_runs(
                actor=scope[0], **scope[1], limit=PAGE_SIZE, bookmark=request.GET.get("bookmark"),
                newest_first=newest_first, require_filter=False,
            )
        except InvalidArgument as error:
            messages.error(request, error.message)
            status = error.status
    context = {
        "actor": actor, "tabs": tabs, "tab": tab, "search": search, "page": page, "filtering": bool(filters),
        "newest_first": newest_first, "paged": bool(request.GET.get("bookmark")),
        "rows": _inbox_rows(page.results) if page else [],
        # base.html's navbar from the actor: no queries of its own for groups and permissions
        "navbar_groups": sorted(actor.groups), "navbar_audit": actor.has(PERM_VIEW_AUDIT),
    }
    return render(request, "usertasks/inbox.html", context, status=status)


def _inbox_rows(runs) -> list[dict]:
    """The inbox table's cells as plain strings, which the template escapes like any other. Built
    here rather than with {% url %}, an {% include %} of the badge and four filters per row: those
    were nearly half the page's rendering time (README "Performance")."""
    # One reverse() for the page; a row's link is what reverse() would give for its ids.
    sample = reverse("usertasks:task", args=("w", "g"))
    prefix = sample[: -len("w/g/")]
    now = timezone.now()
    rows = []
    for run in runs:
        created = timezone.localtime(run.scheduled_time)
        rows.append({
            "url": f"{prefix}{quote(run.wf_run_id, safe=_URL_SAFE)}/{quote(run.user_task_guid, safe=_URL_SAFE)}/",
            "type": run.user_task_def.name,
            "version": run.user_task_def.version,
            "notes": run.notes,
            "notes_short": Truncator(run.notes).chars(60) or "—",
            "status": run.status,
            "badge": STATUS_BADGES.get(run.status, "text-bg-danger"),
            "user_id": run.user_id or "—",
            "user_group": run.user_group or "—",
            "created_iso": created.isoformat(),
            "created": f"{created.year:04d}-{created.month:02d}-{created.day:02d} {created.hour:02d}:{created.minute:02d}",
            "age": timesince(created, now),
        })  # fmt: skip
    return rows


def _visible_run(actor: Actor, wf_run_id: str, user_task_guid: str) -> UserTaskRun:
    """The run with its def and the def's fields (one query each); 404 when the actor may not see it."""
    try:
        run = selectors.get_user_task_run(actor, (wf_run_id, user_task_guid))
    except NotFound:
        raise Http404("UserTaskRun not found") from None
    prefetch_related_objects([run.user_task_def], "fields")
    return run


def _render_task(request, actor, run, *, form=None, comment_form=None, status=200):
    """The task page; `form`/`comment_form` carry what was typed when a POST failed."""
    events = list(run.events.order_by("id"))
    comments = selectors.comments_from_events(events)
    for comment in comments:
        comment["may_change"] = actor.may_change_comment(comment)
    may_work_on = actor.may_work_on(run)
    if not may_work_on:
        form = None  # not even a refused POST's typed input: the user may not use this form
    elif form is None:
        form = UserTaskRunForm(run.user_task_def, initial=run.results)
    fields = list(run.user_task_def.fields.all())
    shown = run.output if run.status == UserTaskRun.Status.DONE else run.results
    context = {
        "actor": actor,
        "run": run,
        "form": form,
        "comment_form": comment_form or CommentForm(),
        "comments": comments,
        "events": events,
        "results": [(f, (shown or {}).get(f.name)) for f in fields],
        "has_draft": bool(run.results),
        "may": {
            "claim": actor.may_claim(run),
            "release": actor.may_release(run),
            "work": may_work_on,
        },
    }
    return render(request, "usertasks/task_detail.html", context, status=status)


def _refused(request, actor, run_key, error: UserTaskError, **forms):
    """Re-render the task page as it now is, with the error and the typed input."""
    messages.error(request, error.message)
    return _render_task(request, actor, _visible_run(actor, *run_key), status=error.status, **forms)


@login_required
def task_detail(request, wf_run_id, user_task_guid):
    actor = Actor.for_user(request.user)
    return _render_task(request, actor, _visible_run(actor, wf_run_id, user_task_guid))


@require_POST
@login_required
def task_results(request, wf_run_id, user_task_guid, action):
    """"Save progress" or "Complete": the generated form's two submit buttons."""
    actor = Actor.for_user(request.user)
    run = _visible_run(actor, wf_run_id, user_task_guid)
    run_key = (wf_run_id, user_task_guid)
    form = UserTaskRunForm(run.user_task_def, data=request.POST, draft=action == "save")
    if not form.is_valid():
        messages.error(request, "Please correct the fields marked below.")
        return _render_task(request, actor, run, form=form, status=400)
    try:
        if action == "save":
            services.save_user_task_run_progress(run_id=run_key, user_id=actor.name, results=form.results(), actor=actor)
        else:
            services.complete_user_task_run(run_id=run_key, user_id=actor.name, results=form.results(), actor=actor)
    except NotFound:
        raise Http404("UserTaskRun not found") from None
    except UserTaskError as error:
        if form.add_field_errors(error.field_errors):
            error = InvalidArgument("Please correct the fields marked below.")
        return _refused(request, actor, run_key, error, form=form)
    messages.success(request, "Progress saved." if action == "save" else "Task completed.")
    return redirect("usertasks:task", wf_run_id, user_task_guid)


def _simple_action(service, success_message):
    """A POST that calls one service with the run and the actor: claim, release."""

    @require_POST
    @login_required
    def view(request, wf_run_id, user_task_guid):
        actor = Actor.for_user(request.user)
        run_key = (wf_run_id, user_task_guid)
        try:
            service(run_id=run_key, actor=actor)
        except NotFound:
            raise Http404("UserTaskRun not found") from None
        except UserTaskError as error:
            return _refused(request, actor, run_key, error)
        messages.success(request, success_message)
        return redirect("usertasks:task", wf_run_id, user_task_guid)

    return view


task_claim = _simple_action(services.claim_user_task_run, "You claimed this task; it is assigned to you now.")
task_release = _simple_action(services.release_user_task_run, "You released this task to its group.")


@require_POST
@login_required
def comment_add(request, wf_run_id, user_task_guid):
    return _comment_action(request, (wf_run_id, user_task_guid), None, "add")


@require_POST
@login_required
def comment_edit(request, wf_run_id, user_task_guid, comment_id):
    return _comment_action(request, (wf_run_id, user_task_guid), comment_id, "edit")


@require_POST
@login_required
def comment_delete(request, wf_run_id, user_task_guid, comment_id):
    return _comment_action(request, (wf_run_id, user_task_guid), comment_id, "delete")


def _comment_action(request, run_key, comment_id, action):
    actor = Actor.for_user(request.user)
    form = CommentForm(request.POST) if action != "delete" else None
    if form is not None and not form.is_valid():
        messages.error(request, "Write a comment first.")
        kept = form if action == "add" else None
        return _render_task(request, actor, _visible_run(actor, *run_key), comment_form=kept, status=400)
    common = {"run_id": run_key, "user_id": actor.name, "actor": actor}
    try:
        if action == "add":
            services.add_comment(comment=form.cleaned_data["comment"], **common)
        elif action == "edit":
            services.edit_comment(user_comment_id=comment_id, comment=form.cleaned_data["comment"], **common)
        else:
            services.delete_comment(user_comment_id=comment_id, **common)
    except NotFound as error:
        if action == "add":
            raise Http404("UserTaskRun not found") from None
        _visible_run(actor, *run_key)  # the run itself is invisible: 404; else the comment is unknown
        return _refused(request, actor, run_key, error)
    except UserTaskError as error:
        return _refused(request, actor, run_key, error, comment_form=form if action == "add" else None)
    messages.success(request, {"add": "Comment added.", "edit": "Comment updated.", "delete": "Comment deleted."}[action])
    return redirect("usertasks:task", *run_key)
