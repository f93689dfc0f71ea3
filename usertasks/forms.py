"""The task form generated from a UserTaskDef's fields, and the comment form. Forms only validate;
the views call the services."""

from django import forms
from django.utils.html import escape

from .variables import TYPES


class UserTaskRunForm(forms.Form):
    """One input per UserTaskField, in definition order, labelled by its display name (else its
    name) with its description as help text; each field's type comes from the TYPES table.

    `initial` takes saved results (JSON values). `draft=True` is for "Save progress", where
    required fields may still be blank (DESIGN §3); the service checks again either way.
    """

    # The server puts the error beside the field: the same with and without JavaScript, and
    # "Save progress" must not be blocked by the browser for a blank required field.
    use_required_attribute = False

    def __init__(self, user_task_def, data=None, initial=None, *, draft: bool = False):
        super().__init__(data=data)
        self.user_task_def = user_task_def
        self.def_fields = list(user_task_def.fields.all())
        initial = initial or {}
        for def_field in self.def_fields:
            form_field = TYPES[def_field.type].form_field(
                def_field,
                required=def_field.required and not draft,
                label=def_field.label,
                # crispy-forms renders help text unescaped; a description is untrusted input.
                help_text=escape(def_field.description),
            )
            self.fields[def_field.name] = form_field
            value = initial.get(def_field.name)
            if value is not None:
                self.initial[def_field.name] = _form_initial(form_field, value)

    def results(self) -> dict:
        """The cleaned values as JSON results; blank inputs are left out (absent)."""
        results = {}
        for def_field in self.def_fields:
            value = TYPES[def_field.type].from_form(self.cleaned_data.get(def_field.name))
            if value is not None:
                results[def_field.name] = value
        return results

    def add_field_errors(self, field_errors: dict[str, str]) -> bool:
        """Put a service's InvalidArgument.field_errors beside their fields; False if none matched."""
        matched = False
        for name, problem in field_errors.items():
            if name in self.fields:
                self.add_error(name, f"{self.fields[name].label} {problem}.")
                matched = True
        return matched


def _form_initial(form_field: forms.Field, value):
    # A Yes/No select submits "true"/"false"; its initial value must be the same strings.
    if isinstance(form_field, forms.TypedChoiceField) and isinstance(value, bool):
        return "true" if value else "false"
    return value


class CommentForm(forms.Form):
    comment = forms.CharField(
        label="Comment",
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
