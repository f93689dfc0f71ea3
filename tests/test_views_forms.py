"""The task form generated from a UserTaskDef: every field type valid, invalid, empty when
required, optional BOOL unset; pre-filling; escaping of every untrusted string."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.conftest import snapshot
from usertasks import services
from usertasks.actors import SYSTEM
from usertasks.forms import UserTaskRunForm

FIELDS = [
    {"name": "title", "display_name": "Title", "type": "STR", "required": True, "description": "A short title."},
    {"name": "story", "type": "STR", "description": "Explain what happened (long text welcome)."},
    {"name": "count", "display_name": "Count", "type": "INT", "required": True},
    {"name": "spare", "display_name": "Spare parts", "type": "INT"},
    {"name": "amount", "display_name": "Amount", "type": "DOUBLE", "required": True},
    {"name": "tip", "display_name": "Tip", "type": "DOUBLE"},
    {"name": "approved", "display_name": "Approved", "type": "BOOL", "required": True},
    {"name": "urgent", "display_name": "Urgent", "type": "BOOL"},
]
VALID = {"title": "Hyperdrive", "story": "", "count": "3", "spare": "", "amount": "12.5", "tip": "",
         "approved": "true", "urgent": "on"}


@pytest.fixture
def every_type(db):
    udef, _ = services.put_user_task_def(name="every-type", fields=FIELDS, actor=SYSTEM)
    return udef


@pytest.fixture
def run(every_type):
    return services.start_user_task_run(user_task_def_name="every-type", user_id="obiwan",
                                        user_group="jedi-council", actor=SYSTEM)


@pytest.fixture
def obiwan_client(db):
    user = User.objects.create_user("obiwan")
    user.groups.add(Group.objects.create(name="jedi-council"))
    client = Client()
    client.force_login(user)
    return client


def url(run, action=""):
    return f"/tasks/{run.wf_run_id}/{run.user_task_guid}/{action}"


def page_of(response) -> str:
    return response.content.decode()


def field_error(page: str, name: str) -> str:
    """The error text shown beside a field (crispy's invalid-feedback block after the input)."""
    block = re.search(rf'<div id="div_id_{name}".*?(?=<div id="div_id_|</form>)', page, re.S).group(0)
    assert "is-invalid" in block, f"{name} is not marked invalid"
    return re.sub(r"<[^>]+>", "", re.search(r'class="invalid-feedback">(.*?)</div>', block, re.S).group(1)).strip()


def complete(client, run, **changes):
    return client.post(url(run, "complete/"), {**VALID, **changes})


# --- rendering ------------------------------------------------------------------------------------


def test_each_type_gets_its_input(obiwan_client, run):
    page = page_of(obiwan_client.get(url(run)))
    assert re.search(r'<input type="text" name="title"', page)
    assert re.search(r'<textarea name="story"', page)  # "long text" in the description
    assert re.search(r'<input type="number" name="count"[^>]*', page)
    assert re.search(r'<input type="number" name="amount"[^>]*step="any"', page)
    assert re.search(r'<select name="approved"', page) and ">Yes</option>" in page and ">No</option>" in page
    assert re.search(r'<input type="checkbox" name="urgent"', page)
    answer_form = re.search(r"<form[^>]*/save/.*?</form>", page, re.S).group(0)
    assert not re.search(r"<(input|select|textarea)[^>]* required", answer_form)  # the server checks


def test_labels_are_display_names_else_names_with_descriptions_as_help(obiwan_client, run):
    page = page_of(obiwan_client.get(url(run)))
    assert re.search(r'for="id_story"[^>]*>\s*story\s*</label>', page)
    assert re.search(r'for="id_spare"[^>]*>\s*Spare parts\s*</label>', page)
    assert 'id="id_title_helptext" class="form-text">A short title.</div>' in page
    names = re.findall(r'<div id="div_id_(\w+)"', page)[:-1]  # then the comment box
    assert names == [f["name"] for f in FIELDS]  # definition order


def test_a_form_without_data_is_unbound_and_takes_initial_results(every_type):
    form = UserTaskRunForm(every_type, initial={"title": "T", "approved": False, "urgent": True})
    assert not form.is_bound
    assert form["title"].value() == "T" and form["approved"].value() == "false" and form["urgent"].value() is True


# --- valid ------------------------------------------------------------------------------------------


def test_complete_converts_each_type_to_its_json_value(obiwan_client, run):
    response = complete(obiwan_client, run)
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "DONE"
    assert run.output == {"title": "Hyperdrive", "count": 3, "amount": 12.5, "approved": True, "urgent": True}
    assert type(run.output["count"]) is int and type(run.output["amount"]) is float


def test_optional_fields_filled_in(obiwan_client, run):
    complete(obiwan_client, run, story="It broke.\nTwice.", spare="-2", tip="7", approved="false")
    run.refresh_from_db()
    assert run.output == {"title": "Hyperdrive", "story": "It broke.\nTwice.", "count": 3, "spare": -2,
                          "amount": 12.5, "tip": 7.0, "approved": False, "urgent": True}


def test_an_unset_optional_bool_is_false(obiwan_client, run):
    data = {k: v for k, v in VALID.items() if k != "urgent"}  # an unticked checkbox is not submitted
    assert obiwan_client.post(url(run, "complete/"), data).status_code == 302
    run.refresh_from_db()
    assert run.output["urgent"] is False


def test_an_unset_optional_bool_on_save_progress_is_false_too(obiwan_client, run):
    assert obiwan_client.post(url(run, "save/"), {"title": "draft"}).status_code == 302
    run.refresh_from_db()
    assert run.results == {"title": "draft", "urgent": False}


def test_results_shown_read_only_once_done(obiwan_client, run):
    complete(obiwan_client, run, urgent="")
    page = page_of(obiwan_client.get(url(run)))
    shown = dict(re.findall(r'data-field="(\w+)">(.*?)</dd>', page, re.S))
    assert shown["title"] == "Hyperdrive" and shown["count"] == "3" and shown["amount"] == "12.5"
    assert shown["approved"] == "Yes" and shown["urgent"] == "No" and "—" in shown["story"]
    assert "<input" not in page.split("Results")[1].split("Comments")[0]


# --- invalid ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, typed, message",
    [
        ("count", "1.5", "Enter a whole number."),
        ("count", "three", "Enter a whole number."),
        ("count", "9223372036854775808", "Ensure this value is less than or equal to 9223372036854775807."),
        ("spare", "x", "Enter a whole number."),
        ("amount", "lots", "Enter a number."),
        ("amount", "NaN", "Enter a number."),
        ("tip", "1,5", "Enter a number."),
        ("approved", "maybe", "Select a valid choice. maybe is not one of the available choices."),
    ],
)
@pytest.mark.parametrize("action", ["complete/", "save/"])
def test_an_invalid_value_is_shown_beside_its_field_and_changes_nothing(obiwan_client, run, field, typed, message,
                                                                        action):
    before = snapshot(run)
    response = obiwan_client.post(url(run, action), {**VALID, field: typed})
    assert response.status_code == 400
    page = page_of(response)
    assert field_error(page, field) == message
    assert 'value="Hyperdrive"' in page  # what was typed elsewhere is kept
    if field != "approved":
        assert f'value="{typed}"' in page
    assert snapshot(run) == before


def test_a_value_the_service_refuses_is_shown_beside_its_field(obiwan_client, run):
    before = snapshot(run)
    response = complete(obiwan_client, run, amount="1e400")  # a valid decimal, but not a finite double
    assert response.status_code == 400
    assert field_error(page_of(response), "amount").startswith("Amount must be a number (DOUBLE)")
    assert snapshot(run) == before


# --- empty --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["title", "count", "amount", "approved"])
def test_an_empty_required_field_blocks_complete_but_not_save(obiwan_client, run, field):
    before = snapshot(run)
    response = complete(obiwan_client, run, **{field: ""})
    assert response.status_code == 400
    page = page_of(response)
    assert field_error(page, field) == "This field is required."
    assert 'value="12.5"' in page or field == "amount"
    assert snapshot(run) == before

    assert obiwan_client.post(url(run, "save/"), {**VALID, field: ""}).status_code == 302
    run.refresh_from_db()
    assert field not in run.results and run.status == "ASSIGNED"


def test_a_blank_string_counts_as_empty(obiwan_client, run):
    response = complete(obiwan_client, run, title="   ")
    assert response.status_code == 400
    assert field_error(page_of(response), "title") == "This field is required."


def test_empty_optional_fields_are_left_out(obiwan_client, run):
    obiwan_client.post(url(run, "save/"), {"title": "", "story": "", "count": "", "spare": "", "amount": "",
                                           "tip": "", "approved": ""})
    run.refresh_from_db()
    assert run.results == {"urgent": False}


# --- pre-filled ---------------------------------------------------------------------------------------


def test_the_form_is_prefilled_from_saved_results(obiwan_client, run):
    services.save_user_task_run_progress(
        run_id=run.run_id, user_id="obiwan", actor=SYSTEM,
        results={"title": "Saved", "story": "Long\nstory", "count": 4, "amount": 2.25, "approved": False,
                 "urgent": True},
    )
    page = page_of(obiwan_client.get(url(run)))
    assert 'name="title" value="Saved"' in page
    assert ">\nLong\nstory</textarea>" in page
    assert re.search(r'name="count" value="4"', page) and re.search(r'name="amount" value="2.25"', page)
    assert re.search(r'<option value="false" selected>No</option>', page)
    assert re.search(r'<input type="checkbox" name="urgent"[^>]*checked', page)


# --- escaping (DESIGN §7) -----------------------------------------------------------------------------

SCRIPT = "<script>alert('xss')</script>"
IMG = '"><img src=x onerror=alert(1)>'


def test_untrusted_strings_are_escaped_everywhere_on_the_task_page(obiwan_client, db):
    services.put_user_task_def(
        name="xss", description=SCRIPT, actor=SYSTEM,
        fields=[{"name": "field_a", "display_name": SCRIPT, "description": IMG, "type": "STR"},
                {"name": "field_b", "display_name": "", "description": SCRIPT, "type": "BOOL"}],
    )
    run = services.start_user_task_run(user_task_def_name="xss", user_id="obiwan", user_group="jedi-council",
                                       notes=SCRIPT + IMG, actor=SYSTEM)
    services.save_user_task_run_progress(run_id=run.run_id, user_id="obiwan", results={"field_a": IMG},
                                         actor=SYSTEM)
    services.add_comment(run_id=run.run_id, user_id="obiwan", comment=SCRIPT + IMG, actor=SYSTEM)
    page = page_of(obiwan_client.get(url(run)))
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in page
    assert 'value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"' in page  # the saved draft in the input

    services.complete_user_task_run(run_id=run.run_id, user_id="obiwan", results={"field_a": SCRIPT},
                                    actor=SYSTEM)
    done = page_of(obiwan_client.get(url(run)))
    assert "<script>alert" not in done and "<img src=x" not in done
    assert 'data-field="field_a">&lt;script&gt;' in done


def test_a_cancel_message_is_escaped_in_the_banner(obiwan_client, run):
    services.cancel_user_task_run(run_id=run.run_id, message=SCRIPT, actor=SYSTEM)
    page = page_of(obiwan_client.get(url(run)))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in page.split('data-testid="cancelled-banner"')[1]


def test_a_typed_payload_is_escaped_when_the_form_comes_back_with_errors(obiwan_client, run):
    response = complete(obiwan_client, run, title=IMG, count="x")
    page = page_of(response)
    assert response.status_code == 400 and "<img src=x" not in page
    assert 'value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"' in page


def test_a_def_without_fields_is_acknowledged_with_complete(obiwan_client, db):
    services.put_user_task_def(name="acknowledge", fields=[], actor=SYSTEM)
    run = services.start_user_task_run(user_task_def_name="acknowledge", user_id="obiwan", actor=SYSTEM)
    page = page_of(obiwan_client.get(url(run)))
    assert "This task has no fields" in page and ">Complete</button>" in page and "Save progress" not in page
    assert obiwan_client.post(url(run, "complete/")).status_code == 302
    run.refresh_from_db()
    assert (run.status, run.output) == ("DONE", {})
    assert "it was acknowledged" in page_of(obiwan_client.get(url(run)))
