"""Admin screens. Runs, events and definitions are read-only here: every change goes through
usertasks/services.py (the reassign/cancel actions and def versioning arrive with issue 5)."""

from django.contrib import admin

from .models import UserTaskDef, UserTaskEvent, UserTaskField, UserTaskRun, WfRun


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UserTaskFieldInline(admin.TabularInline):
    model = UserTaskField
    fields = ("position", "name", "display_name", "type", "required", "description")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(UserTaskDef)
class UserTaskDefAdmin(ReadOnlyAdmin):
    list_display = ("name", "version", "description", "created_at")
    search_fields = ("name",)
    inlines = [UserTaskFieldInline]


class UserTaskEventInline(admin.TabularInline):
    model = UserTaskEvent
    fields = ("time", "type", "actor", "payload")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("id",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(UserTaskRun)
class UserTaskRunAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "user_task_def", "status", "user_id", "user_group", "scheduled_time", "updated_at")
    list_filter = ("status", "user_task_def_name", "user_group")
    search_fields = ("wf_run__id", "user_task_guid", "user_id", "user_group")
    list_select_related = ("user_task_def",)
    inlines = [UserTaskEventInline]


@admin.register(WfRun)
class WfRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "callback_url", "created_at")
    search_fields = ("id",)


@admin.register(UserTaskEvent)
class UserTaskEventAdmin(ReadOnlyAdmin):
    list_display = ("time", "type", "actor", "user_task_run")
    list_filter = ("type",)
    list_select_related = ("user_task_run",)
