"""The inbox: its three tabs and the django-filter search form with the six filters of DESIGN §8.

The FilterSet's filter names are the search service's argument names. The inbox uses it for the
form and its validation only, and hands the cleaned values to `selectors.search_user_task_runs`,
which scopes to the runs the user may see and pages with keyset bookmarks; the FilterSet's own
`.qs` (unscoped, OFFSET pages) is never used.
"""

from dataclasses import dataclass

import django_filters
from django import forms

from .actors import Actor
from .models import UserTaskDef, UserTaskRun

SEARCH_FIELDS = ("status", "user_task_def_name", "user_id", "user_group", "earliest_start", "latest_start")


# Bootstrap's classes on the widgets themselves: the inbox renders the six fields with plain
# template markup, not crispy-forms (a fifth of the page's rendering time; README "Performance").
SELECT = {"class": "select form-select"}
TEXT = {"class": "textinput form-control"}
DATETIME = {"class": "datetimelocalinput form-control"}


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self):
        super().__init__(DATETIME, format="%Y-%m-%dT%H:%M")


class UserTaskRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        label="Status", choices=UserTaskRun.Status.choices, empty_label="Any status", widget=forms.Select(SELECT)
    )
    user_task_def_name = django_filters.ChoiceFilter(
        label="Task type", choices=[], empty_label="Any task type", widget=forms.Select(SELECT)
    )
    user_id = django_filters.CharFilter(label="User", widget=forms.TextInput(TEXT))
    user_group = django_filters.CharFilter(label="Group", widget=forms.TextInput(TEXT))
    earliest_start = django_filters.DateTimeFilter(
        label="Created after", field_name="scheduled_time", lookup_expr="gte", widget=DateTimeLocalInput()
    )
    latest_start = django_filters.DateTimeFilter(
        label="Created before", field_name="scheduled_time", lookup_expr="lte", widget=DateTimeLocalInput()
    )

    class Meta:
        model = UserTaskRun
        fields = list(SEARCH_FIELDS)

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        names = UserTaskDef.objects.order_by("name").values_list("name", flat=True).distinct()
        self.filters["user_task_def_name"].extra["choices"] = [(name, name) for name in names]

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name in self.form.errors:  # Bootstrap's invalid state, the message beside the field
            if name in self.form.fields:
                widget = self.form.fields[name].widget  # this form's own copy
                css = widget.attrs.get("class", "")
                widget.attrs = {**widget.attrs, "class": f"{css} is-invalid", "aria-describedby": f"id_{name}_error"}
        return valid

    def search_arguments(self) -> dict:
        """The given filters as keyword arguments of search_user_task_runs (call after is_valid)."""
        data = self.form.cleaned_data
        return {name: data[name] for name in SEARCH_FIELDS if data.get(name) not in (None, "")}


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    # Filters the tab fixes; a search filter asking for something else finds nothing.
    fixed: dict
    members_view: bool  # search as a plain member of one's groups (see Actor.as_member)


def inbox_tabs(actor: Actor) -> list[Tab]:
    return [
        Tab("assigned", "Assigned to me", {"status": "ASSIGNED", "user_id": actor.name}, False),
        Tab("claimable", "Claimable", {"status": "UNASSIGNED"}, True),
        Tab("all", "All visible", {}, False),
    ]


def tab_search(tab: Tab, actor: Actor, filters: dict) -> tuple[Actor, dict] | None:
    """The actor and search arguments for a tab plus the search filters; None when they conflict."""
    merged = dict(filters)
    for name, value in tab.fixed.items():
        if merged.get(name, value) != value:
            return None
        merged[name] = value
    return (actor.as_member() if tab.members_view else actor), merged
