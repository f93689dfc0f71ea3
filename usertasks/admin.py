"""Admin screens (DESIGN §8). Nothing here writes a definition, run or event except through
usertasks/services.py: a changed UserTaskDef becomes a new version through put_user_task_def,
runs change only through the "Reassign…" and "Cancel" actions (the assign and cancel services,
one call per run, reported per run), and events are read-only everywhere."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from . import services
from .actors import PERM_ACT_FOR_OTHERS, PERM_ASSIGN, PERM_CANCEL, PERM_PUT_DEF, Actor
from .audit import describe_event
from .exceptions import InvalidArgument, UserTaskError
from .models import CallbackDelivery, ScheduledAction, UserTaskDef, UserTaskEvent, UserTaskField, UserTaskRun, WfRun

# A bulk action calls one service transaction per run; beyond this, use the API.
MAX_ACTION_RUNS = 500


def _may(request, perm: str) -> bool:
    """The admin offers what the services would allow: the permission, or acting for others."""
    return request.user.has_perm(perm) or request.user.has_perm(PERM_ACT_FOR_OTHERS)


def _pretty_json(value) -> str:
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- definitions ----------------------------------------------------------------------------


def _checked(clean, value):
    """Run one of the service's argument checks as form validation."""
    try:
        return clean(value)
    except InvalidArgument as error:
        raise ValidationError(error.message) from None


class UserTaskDefForm(forms.ModelForm):
    description = forms.CharField(
        required=False, max_length=services.MAX_TEXT, widget=forms.Textarea(attrs={"rows": 3, "cols": 80})
    )

    class Meta:
        model = UserTaskDef
        fields = ("name", "description", "default_actions")
        widgets = {"default_actions": forms.Textarea(attrs={"rows": 3, "cols": 80})}
        help_texts = {
            "name": "Lowercase letters, digits and hyphens. An existing name gets its next version.",
            "default_actions": 'Timed hooks copied onto every new run, e.g. [{"type": "REMINDER", '
            '"hook": "ON_TASK_ASSIGNED", "delay_seconds": 3600}].',
        }

    def clean_name(self):
        return _checked(services.clean_def_name, self.cleaned_data["name"])

    def clean_default_actions(self):
        return _checked(services.clean_actions, self.cleaned_data.get("default_actions"))


class UserTaskFieldForm(forms.ModelForm):
    class Meta:
        model = UserTaskField
        fields = ("position", "name", "display_name", "type", "required", "description")
        labels = {"position": "Order"}
        widgets = {
            "position": forms.NumberInput(attrs={"style": "width: 4em"}),
            "name": forms.TextInput(attrs={"size": 18}),
            "display_name": forms.TextInput(attrs={"size": 22}),
            "description": forms.Textarea(attrs={"rows": 1, "cols": 28}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["position"].required = False


class UserTaskFieldFormSet(forms.BaseInlineFormSet):
    """The rows become the `fields` argument of put_user_task_def; they are never saved as such."""

    def validate_unique(self):
        # The rows are not stored: duplicate names are the service's check (below), and
        # positions are renumbered from the order.
        pass

    def clean(self):
        super().clean()
        self.definition_fields = []
        if any(self.errors):
            return
        # Untouched blank rows have no cleaned_data; rows without an order go last, as typed.
        rows = [form for form in self.forms if form.cleaned_data and not self._should_delete_form(form)]
        rows.sort(key=lambda form: (form.cleaned_data.get("position") is None, form.cleaned_data.get("position") or 0))
        fields = [
            {key: form.cleaned_data.get(key) for key in ("name", "display_name", "description", "type", "required")}
            for form in rows
        ]
        self.definition_fields = _checked(services.clean_def_fields, fields)


class UserTaskFieldInline(admin.TabularInline):
    model = UserTaskField
    form = UserTaskFieldForm
    formset = UserTaskFieldFormSet
    ordering = ("position",)
    verbose_name = "field"
    verbose_name_plural = "fields (in order)"

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj else 3

    # The fields are edited with their def: whoever may put defs may edit them here.
    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return _may(request, PERM_PUT_DEF)

    def has_change_permission(self, request, obj=None):
        return _may(request, PERM_PUT_DEF)

    def has_delete_permission(self, request, obj=None):
        return _may(request, PERM_PUT_DEF)


@admin.register(UserTaskDef)
class UserTaskDefAdmin(admin.ModelAdmin):
    """Versions are immutable: saving a changed def creates the next version through the service
    (an identical one creates nothing); runs keep the version they were created with."""

    form = UserTaskDefForm
    inlines = [UserTaskFieldInline]
    list_display = ("name", "version", "short_description", "field_count", "created_at")
    list_display_links = ("name", "version")
    search_fields = ("=name",)
    ordering = ("name", "-version")
    save_as = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(field_count=Count("fields"))

    @admin.display(description="description")
    def short_description(self, obj):
        return obj.description if len(obj.description) <= 80 else obj.description[:79] + "…"

    @admin.display(description="fields", ordering="field_count")
    def field_count(self, obj):
        return obj.field_count

    @admin.display(description="runs of this version")
    def runs_of_this_version(self, obj):
        return obj.runs.count()

    def get_fieldsets(self, request, obj=None):
        note = (
            "Saving creates a new version when anything changed (fields marked Delete? are left out of it); "
            "this version and the runs that use it stay exactly as they are. Versions are never deleted."
        )
        if obj is None:
            return [(None, {"fields": ("name", "description", "default_actions"), "description": note})]
        return [
            (None, {"fields": ("name", "version", "created_at", "runs_of_this_version"), "description": note}),
            ("Definition", {"fields": ("description", "default_actions")}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return ("name", "version", "created_at", "runs_of_this_version") if obj else ()

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or _may(request, PERM_PUT_DEF)

    def has_add_permission(self, request):
        return _may(request, PERM_PUT_DEF)

    def has_change_permission(self, request, obj=None):
        return _may(request, PERM_PUT_DEF)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Nothing is saved in place: save_related hands the whole definition to the service."""

    def save_related(self, request, form, formsets, change):
        (fields_formset,) = (fs for fs in formsets if isinstance(fs, UserTaskFieldFormSet))
        draft = form.instance
        udef, created = services.put_user_task_def(
            name=draft.name,
            description=draft.description,
            fields=fields_formset.definition_fields,
            default_actions=draft.default_actions,
            actor=Actor.for_user(request.user),
        )
        # From here on the admin (history entry, message, redirect) deals with the version the
        # service returned, not with the edited one.
        draft.pk = udef.pk
        draft._state.adding = False
        draft.refresh_from_db()
        draft.version_created = created

    def construct_change_message(self, request, form, formsets, add=False):
        obj = form.instance
        return f"Saved as version {obj.version}." if obj.version_created else "Identical to this version: nothing saved."

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except UserTaskError as error:  # e.g. a concurrent writer took the version number
            self.message_user(request, f"Not saved: {error.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def _response_put(self, request, obj):
        if obj.version_created:
            self.message_user(
                request,
                f"Saved {obj.name} as version {obj.version}. Runs already started keep the version they were created with.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, f"Nothing changed: {obj} is identical, so no new version was created.", messages.INFO
            )
        if "_continue" in request.POST:
            url = reverse("admin:usertasks_usertaskdef_change", args=[obj.pk])
        elif "_addanother" in request.POST:
            url = reverse("admin:usertasks_usertaskdef_add")
        else:
            url = reverse("admin:usertasks_usertaskdef_changelist")
        return HttpResponseRedirect(url)

    def response_add(self, request, obj, post_url_continue=None):
        return self._response_put(request, obj)

    def response_change(self, request, obj):
        return self._response_put(request, obj)


# --- runs -----------------------------------------------------------------------------------


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return True  # shown only on a run page, which checks its own permission

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UserTaskEventInline(_ReadOnlyInline):
    model = UserTaskEvent
    fields = ("time", "event_type", "actor", "details", "payload_json")
    readonly_fields = fields
    ordering = ("id",)
    verbose_name_plural = "events (append-only)"

    @admin.display(description="type")
    def event_type(self, event):
        return event.type

    @admin.display(description="details")
    def details(self, event):
        return describe_event(event.type, event.payload)

    @admin.display(description="payload")
    def payload_json(self, event):
        return _pretty_json(event.payload)


class ScheduledActionInline(_ReadOnlyInline):
    """Timed hooks (DESIGN §5) as scheduled: when each is due, and what it did when it fired."""

    model = ScheduledAction
    fields = ("action_summary", "hook", "epoch", "due_at", "fired_at", "outcome", "detail")
    readonly_fields = fields
    ordering = ("due_at", "id")
    verbose_name_plural = "timed hooks"

    @admin.display(description="action")
    def action_summary(self, scheduled):
        action = scheduled.action or {}
        target = " ".join(f"{k}={action[k]}" for k in ("user_id", "user_group") if action.get(k))
        return f"{action.get('type', '?')} after {action.get('delay_seconds', '?')} s {target}".strip()


class CallbackDeliveryInline(_ReadOnlyInline):
    """Workflow callbacks (DESIGN §6) and every attempt: time, HTTP status or error."""

    model = CallbackDelivery
    fields = ("event", "url", "status", "created_at", "delivered_at", "attempt_list")
    readonly_fields = fields
    ordering = ("id",)
    verbose_name_plural = "workflow callbacks"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("attempts")

    @admin.display(description="attempts")
    def attempt_list(self, delivery):
        attempts = sorted(delivery.attempts.all(), key=lambda a: a.number)
        if not attempts:
            return "none yet"
        return format_html(
            "<ol style='margin:0;padding-left:1.2em'>{}</ol>",
            format_html_join(
                "",
                "<li>{} — {}</li>",
                (
                    (a.attempted_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                     f"HTTP {a.status_code}" if a.status_code else (a.error or "no response"))
                    for a in attempts
                ),
            ),
        )


class TaskTypeFilter(admin.SimpleListFilter):
    """By task type (all versions); the choices come from the small defs table, not the runs."""

    title = "task type"
    parameter_name = "user_task_def_name"

    def lookups(self, request, model_admin):
        names = UserTaskDef.objects.order_by("name").values_list("name", flat=True).distinct()
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(user_task_def_name=self.value())
        return queryset


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(status, status) for status in UserTaskRun.Status.values]

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


class GroupFilter(admin.AllValuesFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "group"


class ReassignForm(forms.Form):
    user_id = forms.CharField(
        label="user_id",
        required=False,
        max_length=256,
        widget=forms.TextInput(attrs={"list": "known-users", "autocomplete": "off"}),
        help_text="The user to assign to. Leave blank to leave the runs UNASSIGNED, claimable by the group.",
    )
    user_group = forms.CharField(
        label="user_group",
        required=False,
        max_length=256,
        widget=forms.TextInput(attrs={"list": "known-groups", "autocomplete": "off"}),
        help_text="Both values are set on every run: a blank one is cleared, not kept.",
    )
    override_claim = forms.BooleanField(
        label="override_claim",
        required=False,
        help_text="Also reassign runs that are assigned to someone now (otherwise they are refused).",
    )

    def clean(self):
        data = super().clean()
        data["user_id"] = data.get("user_id") or None
        data["user_group"] = data.get("user_group") or None
        if data["user_id"] is None and data["user_group"] is None:
            raise ValidationError("Give a user_id or a user_group (or both).")
        return data


class CancelForm(forms.Form):
    message = forms.CharField(
        label="message",
        required=False,
        max_length=services.MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=f"Sent to the workflow; blank means “{services.DEFAULT_CANCEL_MESSAGE}”.",
    )


def _owner(user_id, user_group) -> str:
    if user_id and user_group:
        return f"{user_id} (group {user_group})"
    return user_id or f"group {user_group}"


@admin.register(UserTaskRun)
class UserTaskRunAdmin(ReadOnlyAdmin):
    """Read-only: runs change only through the Reassign… and Cancel actions (the services)."""

    list_display = ("run_id", "type_at_version", "status_value", "user", "group", "created", "updated")
    list_display_links = ("run_id",)
    list_filter = (StatusFilter, TaskTypeFilter, ("user_group", GroupFilter))
    search_fields = ("wf_run_id", "user_task_guid", "user_id", "user_group")
    search_help_text = "An exact wf_run_id, user_task_guid, wf_run_id/user_task_guid, user_id or user_group."
    list_select_related = ("user_task_def",)
    date_hierarchy = "scheduled_time"
    ordering = ("-scheduled_time", "-id")
    # Counting every run (twice with facets) is what makes an admin slow at a million rows.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    inlines = [UserTaskEventInline, ScheduledActionInline, CallbackDeliveryInline]
    actions = ["reassign_runs", "cancel_runs"]
    fieldsets = [
        (None, {"fields": ("run_id", "wf_run_link", "type_at_version", "status_value", "user", "group", "epoch",
                           "scheduled_time", "updated_at")}),
        ("Content", {"fields": ("notes", "results_json", "output_json", "failure_json")}),
        ("Timed hooks", {"fields": ("actions_json", "on_cancellation_exception_name")}),
    ]
    readonly_fields = (
        "run_id", "wf_run_link", "type_at_version", "status_value", "user", "group", "epoch", "scheduled_time", "updated_at",
        "notes", "results_json", "output_json", "failure_json", "actions_json", "on_cancellation_exception_name",
    )  # fmt: skip

    @admin.display(description="id", ordering="id")
    def run_id(self, run):
        return str(run)

    @admin.display(description="type@version", ordering="user_task_def_name")
    def type_at_version(self, run):
        return str(run.user_task_def)

    @admin.display(description="status", ordering="status")
    def status_value(self, run):
        return run.status

    @admin.display(description="user", ordering="user_id", empty_value="—")
    def user(self, run):
        return run.user_id

    @admin.display(description="group", ordering="user_group", empty_value="—")
    def group(self, run):
        return run.user_group

    @admin.display(description="created", ordering="scheduled_time")
    def created(self, run):
        return run.scheduled_time

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, run):
        return run.updated_at

    @admin.display(description="workflow run")
    def wf_run_link(self, run):
        url = reverse("admin:usertasks_wfrun_change", args=[run.wf_run_id])
        return format_html('<a href="{}">{}</a>', url, run.wf_run_id)

    @admin.display(description="results")
    def results_json(self, run):
        return _pretty_json(run.results)

    @admin.display(description="output")
    def output_json(self, run):
        return _pretty_json(run.output)

    @admin.display(description="failure")
    def failure_json(self, run):
        return _pretty_json(run.failure)

    @admin.display(description="actions")
    def actions_json(self, run):
        return _pretty_json(run.actions)

    def get_search_results(self, request, queryset, search_term):
        """Exact, indexed matches only: a substring search would scan every run."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(wf_run_id=term) | Q(user_task_guid=term) | Q(user_id=term) | Q(user_group=term)
        wf_run_id, slash, guid = term.partition("/")
        if slash:
            match |= Q(wf_run_id=wf_run_id, user_task_guid=guid)
        return queryset.filter(match), False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self.has_assign_permission(request) or self.has_cancel_permission(request)

    def has_assign_permission(self, request):
        return _may(request, PERM_ASSIGN)

    def has_cancel_permission(self, request):
        return _may(request, PERM_CANCEL)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The run page offers the two actions for this one run (they post to the changelist)."""
        offered = []
        run = self.get_object(request, object_id)
        if run is not None and not run.is_final:
            for name in self.get_actions(request):
                if name in ("reassign_runs", "cancel_runs"):
                    offered.append((name, "Reassign…" if name == "reassign_runs" else "Cancel run"))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "run_actions": offered})

    # --- actions: an intermediate page, then one service call per run, reported per run ------

    @admin.action(description="Reassign…", permissions=["assign"])
    def reassign_runs(self, request, queryset):
        runs = self._selection(request, queryset)
        if runs is None:
            return None
        form = ReassignForm(request.POST if "post" in request.POST else None)
        if form.is_bound and form.is_valid():
            actor = Actor.for_user(request.user)
            target = _owner(form.cleaned_data["user_id"], form.cleaned_data["user_group"])

            def reassign(run):
                services.assign_user_task_run(run_id=run.run_id, actor=actor, **form.cleaned_data)
                return f"reassigned from {_owner(run.user_id, run.user_group)} to {target}."

            self._report(request, runs, reassign, done="Reassigned", failed="not reassigned")
            return None
        user_model = get_user_model()
        return self._intermediate_page(
            request,
            runs,
            form,
            action="reassign_runs",
            title="Reassign user task runs",
            template="reassign_selected.html",
            usernames=user_model.objects.order_by(user_model.USERNAME_FIELD).values_list(
                user_model.USERNAME_FIELD, flat=True
            )[:500],
            group_names=Group.objects.order_by("name").values_list("name", flat=True)[:500],
        )

    @admin.action(description="Cancel", permissions=["cancel"])
    def cancel_runs(self, request, queryset):
        runs = self._selection(request, queryset)
        if runs is None:
            return None
        form = CancelForm(request.POST if "post" in request.POST else None)
        if form.is_bound and form.is_valid():
            actor = Actor.for_user(request.user)
            message = form.cleaned_data["message"] or None

            def cancel(run):
                services.cancel_user_task_run(run_id=run.run_id, actor=actor, message=message)
                return "cancelled."

            self._report(request, runs, cancel, done="Cancelled", failed="not cancelled")
            return None
        return self._intermediate_page(
            request, runs, form, action="cancel_runs", title="Cancel user task runs", template="cancel_selected.html"
        )

    def _selection(self, request, queryset):
        runs = list(queryset.select_related("user_task_def").order_by("scheduled_time", "id")[: MAX_ACTION_RUNS + 1])
        if len(runs) > MAX_ACTION_RUNS:
            self.message_user(
                request,
                f"Select at most {MAX_ACTION_RUNS} runs at a time (or use the API for larger batches); nothing was changed.",
                messages.ERROR,
            )
            return None
        return runs

    def _report(self, request, runs, operation, *, done: str, failed: str):
        """Call the operation per run (each its own transaction) and report every run. Each
        report starts with a word: the admin capitalises the first letter of a message, and a
        wf_run_id is case-sensitive."""
        reports, changed = [], 0
        for run in runs:
            try:
                outcome = operation(run)
            except UserTaskError as error:
                reports.append((f"UserTaskRun {run}: {failed} — {error.message}", messages.ERROR))
            else:
                changed += 1
                reports.append((f"UserTaskRun {run}: {outcome}", messages.SUCCESS))
        level = messages.SUCCESS if changed == len(runs) else messages.WARNING
        self.message_user(request, f"{done} {changed} of {len(runs)} selected runs.", level)
        for text, level in reports:
            self.message_user(request, text, level)

    def _intermediate_page(self, request, runs, form, *, action, title, template, **context):
        opts = self.model._meta
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            [f"admin/{opts.app_label}/{opts.model_name}/{template}"],
            {
                **self.admin_site.each_context(request),
                "title": title,
                "subtitle": None,
                "opts": opts,
                "runs": runs,
                "form": form,
                "action": action,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "media": self.media + form.media,
                **context,
            },
        )


@admin.register(WfRun)
class WfRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "callback_url", "created_at")
    search_fields = ("=id",)


@admin.register(UserTaskEvent)
class UserTaskEventAdmin(ReadOnlyAdmin):
    """The append-only audit trail: viewable, never added, changed or deleted here."""

    list_display = ("time", "type", "actor", "user_task_run", "details")
    list_filter = ("type",)
    list_select_related = ("user_task_run",)
    ordering = ("-time", "-id")
    show_full_result_count = False
    fields = ("user_task_run", "time", "type", "actor", "details", "payload_json")
    readonly_fields = fields

    @admin.display(description="details")
    def details(self, event):
        return describe_event(event.type, event.payload)

    @admin.display(description="payload")
    def payload_json(self, event):
        return _pretty_json(event.payload)


# --- API tokens (issue 3). Self-contained: keep this block at the end of admin.py. -------------

from django.contrib import admin as _token_admin  # noqa: E402
from django.utils import timezone as _token_timezone  # noqa: E402

from .models import ApiToken  # noqa: E402


@_token_admin.register(ApiToken)
class ApiTokenAdmin(_token_admin.ModelAdmin):
    """Tokens are created by `manage.py create_api_token <username>` (the secret is shown once,
    there); here they are listed, renamed and revoked. Only the secret's first characters are
    shown: the stored hash never is, and neither can be used to authenticate."""

    list_display = ("token_prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", _token_admin.EmptyFieldListFilter), "created_at")
    search_fields = ("user__username", "name", "token_prefix")
    list_select_related = ("user",)
    fields = ("token_prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("token_prefix", "user", "created_at", "last_used_at")
    actions = ["revoke_tokens"]

    def has_add_permission(self, request):
        return False

    @_token_admin.action(description="Revoke selected API tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=_token_timezone.now())
        self.message_user(request, f"Revoked {revoked} API token(s); requests with them now get 401.")
