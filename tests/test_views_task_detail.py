"""The task page /tasks/<wf_run_id>/<user_task_guid>/: header, actions (PRG), comments, timeline."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.conftest import snapshot
from usertasks import services
from usertasks.actors import SYSTEM, Actor


@pytest.fixture
def login(db):
    """login(username, *groups) -> a logged-in test Client."""

    def _login(username, *groups, superuser=False):
        user = User.objects.create_user(username, is_superuser=superuser, is_staff=superuser)
        user.groups.add(*[Group.objects.get_or_create(name=g)[0] for g in groups])
        client = Client()
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def obiwan_client(login):
    return login("obiwan", "jedi-council")


def url(run, action=""):
    return f"/tasks/{run.wf_run_id}/{run.user_task_guid}/{action}"


def page_of(response) -> str:
    return response.content.decode()


def buttons(page: str) -> set[str]:
    return set(re.findall(r'<button[^>]*type="submit"[^>]*>([^<]+)</button>', page)) & {
        "Save progress", "Complete", "Claim", "Release"}


def follow(client, path, data=None):
    """POST, check the redirect back to the task page (PRG), and return the page it leads to."""
    response = client.post(path, data or {})
    assert response.status_code == 302, page_of(response)[:3000]
    assert re.fullmatch(r"/tasks/[^/]+/[0-9a-f]{32}/", response["Location"])
    return page_of(client.get(response["Location"]))


# --- the page -----------------------------------------------------------------------------------


def test_header_shows_type_version_status_user_group_created_notes(obiwan_client, start_run):
    run = start_run(user_id="obiwan", notes="Lost in the mines of Moria.")
    page = page_of(obiwan_client.get(url(run)))
    assert "it-request" in page and "version 0" in page
    assert ">ASSIGNED</span>" in page
    assert 'data-testid="run-user">obiwan<' in page and 'data-testid="run-group">jedi-council<' in page
    assert run.scheduled_time.strftime("%Y-%m-%d %H:%M") in page
    assert "Lost in the mines of Moria." in page


def test_the_form_has_one_input_per_field_in_order_labelled_by_display_name(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    page = page_of(obiwan_client.get(url(run)))
    assert page.index('name="requestedItem"') < page.index('name="justification"')
    assert re.search(r'<label\s+for="id_requestedItem"[^>]*>\s*Requested item\s*<span class="asteriskField">\*</span>', page)
    assert re.search(r'<label\s+for="id_justification"[^>]*>\s*Justification\s*</label>', page)


def test_every_action_form_posts_with_csrf(obiwan_client, start_run):
    run = start_run(user_id=None)
    page = page_of(obiwan_client.get(url(run)))
    forms = re.findall(r"<form[^>]*>.*?</form>", page, flags=re.S)
    posting = [f for f in forms if 'method="post"' in f]
    assert len(posting) >= 4  # logout, answer, claim, add comment
    assert all("csrfmiddlewaretoken" in f for f in posting)


@pytest.mark.parametrize("path", ["save/", "complete/", "claim/", "release/", "comments/", "comments/1/edit/",
                                  "comments/1/delete/"])
def test_actions_refuse_get(obiwan_client, start_run, path):
    run = start_run(user_id="obiwan")
    assert obiwan_client.get(url(run, path)).status_code == 405


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(start_run, db):
    run = start_run(user_id=None)
    user = User.objects.create_user("obiwan")
    user.groups.add(Group.objects.create(name="jedi-council"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    before = snapshot(run)
    for path in ("claim/", "save/", "complete/", "comments/"):
        assert client.post(url(run, path), {"requestedItem": "x", "comment": "hi"}).status_code == 403
    assert snapshot(run) == before


def test_another_groups_run_is_a_404_and_so_is_an_unknown_one(login, start_run):
    run = start_run(user_id=None, user_group="jedi-council")
    mace = login("mace", "jedi-temple")
    assert mace.get(url(run)).status_code == 404
    assert mace.get("/tasks/nope/0123456789abcdef0123456789abcdef/").status_code == 404


def test_login_is_required(client, start_run):
    run = start_run(user_id=None)
    response = client.get(url(run))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post(url(run, "claim/")).status_code == 302
    run.refresh_from_db()
    assert run.status == "UNASSIGNED"


# --- claim, save progress, complete, release ---------------------------------------------------------


def test_claim_then_save_then_complete(obiwan_client, start_run):
    run = start_run(user_id=None)
    page = follow(obiwan_client, url(run, "claim/"))
    assert "You claimed this task" in page and ">ASSIGNED</span>" in page
    assert buttons(page) == {"Save progress", "Complete", "Release"}

    page = follow(obiwan_client, url(run, "save/"), {"requestedItem": "lightsaber crystal", "justification": ""})
    assert "Progress saved." in page
    assert 'value="lightsaber crystal"' in page  # the form is pre-filled from the saved results
    run.refresh_from_db()
    assert run.results == {"requestedItem": "lightsaber crystal"} and run.user_id == "obiwan"

    page = follow(obiwan_client, url(run, "complete/"), {"requestedItem": "lightsaber crystal",
                                                        "justification": "Mine fell down a shaft."})
    assert "Task completed." in page and ">DONE</span>" in page
    run.refresh_from_db()
    assert run.status == "DONE"
    assert run.output == {"requestedItem": "lightsaber crystal", "justification": "Mine fell down a shaft."}
    # Read-only results, no inputs, no buttons.
    assert 'name="requestedItem"' not in page and buttons(page) == set()
    assert re.search(r'data-field="requestedItem">lightsaber crystal<', page)
    assert re.search(r'data-field="justification">Mine fell down a shaft.<', page)


def test_complete_an_unassigned_run_of_my_group_assigns_it_to_me(obiwan_client, start_run):
    run = start_run(user_id=None)
    follow(obiwan_client, url(run, "complete/"), {"requestedItem": "x"})
    run.refresh_from_db()
    assert (run.status, run.user_id) == ("DONE", "obiwan")


def test_complete_with_a_missing_required_field_keeps_what_was_typed(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    before = snapshot(run)
    response = obiwan_client.post(url(run, "complete/"), {"requestedItem": "  ", "justification": "Because."})
    assert response.status_code == 400
    page = page_of(response)
    assert re.search(r'id="id_requestedItem"[^>]*is-invalid|is-invalid[^>]*id="id_requestedItem"', page)
    assert "This field is required." in page
    assert ">Because.</textarea>" in page or 'value="Because."' in page
    assert snapshot(run) == before


def test_save_progress_accepts_blank_required_fields(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    follow(obiwan_client, url(run, "save/"), {"requestedItem": "", "justification": "later"})
    run.refresh_from_db()
    assert run.results == {"justification": "later"}


def test_release_hands_the_run_back_to_its_group(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    page = follow(obiwan_client, url(run, "release/"))
    assert "You released this task to its group." in page
    run.refresh_from_db()
    assert (run.status, run.user_id, run.user_group) == ("UNASSIGNED", None, "jedi-council")
    assert buttons(page) == {"Claim", "Save progress", "Complete"}


def test_a_run_claimed_meanwhile_shows_why_and_changes_nothing(obiwan_client, start_run, yoda):
    run = start_run(user_id=None)
    page = page_of(obiwan_client.get(url(run)))
    assert "Claim" in buttons(page)
    services.claim_user_task_run(run_id=run.run_id, actor=yoda)  # yoda was quicker
    before = snapshot(run)
    response = obiwan_client.post(url(run, "claim/"))
    assert response.status_code == 409
    assert "already assigned to yoda" in page_of(response)
    assert buttons(page_of(response)) == set()
    assert snapshot(run) == before


def test_completing_a_done_run_again_is_refused(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    services.complete_user_task_run(run_id=run.run_id, user_id="obiwan", results={"requestedItem": "a"},
                                    actor=Actor(name="obiwan", groups=frozenset({"jedi-council"})))
    before = snapshot(run)
    response = obiwan_client.post(url(run, "complete/"), {"requestedItem": "b"})
    assert response.status_code == 409
    assert "already DONE" in page_of(response)
    assert snapshot(run) == before


def test_cancelled_run_shows_a_banner_and_no_form(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    services.save_user_task_run_progress(run_id=run.run_id, user_id="obiwan", results={"requestedItem": "draft"},
                                         actor=Actor(name="obiwan", groups=frozenset({"jedi-council"})))
    services.cancel_user_task_run(run_id=run.run_id, message="Mission called off.", actor=SYSTEM)
    page = page_of(obiwan_client.get(url(run)))
    assert "This task was cancelled." in page and "Mission called off." in page
    assert ">CANCELLED</span>" in page
    assert 'name="requestedItem"' not in page and buttons(page) == set()
    assert "Saved draft" in page and re.search(r'data-field="requestedItem">draft<', page)
    assert "Add comment" in page  # comments stay open


# --- comments -------------------------------------------------------------------------------------


def test_add_edit_and_delete_my_comment(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    page = follow(obiwan_client, url(run, "comments/"), {"comment": "Which colour?"})
    assert "Comment added." in page and "Which colour?" in page
    page = follow(obiwan_client, url(run, "comments/1/edit/"), {"comment": "Blue, please."})
    assert "Comment updated." in page and "Blue, please." in page and "Which colour?" not in page
    page = follow(obiwan_client, url(run, "comments/1/delete/"))
    assert "Comment deleted." in page and "Blue, please." not in page.split("Timeline")[0].split("Comments")[-1]
    assert run.events.filter(type__startswith="COMMENT_").count() == 3


def test_comments_can_be_added_in_any_status(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM)
    assert "Comment added." in follow(obiwan_client, url(run, "comments/"), {"comment": "Pity."})


def test_a_blank_comment_is_refused_beside_the_box(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    before = snapshot(run)
    response = obiwan_client.post(url(run, "comments/"), {"comment": "   "})
    assert response.status_code == 400
    assert "This field is required." in page_of(response)
    assert snapshot(run) == before


def test_only_my_own_comments_offer_edit_and_delete(login, obiwan_client, start_run, yoda):
    run = start_run(user_id="obiwan")
    services.add_comment(run_id=run.run_id, user_id="yoda", comment="Do or do not.", actor=yoda)
    follow(obiwan_client, url(run, "comments/"), {"comment": "There is no try?"})
    page = page_of(obiwan_client.get(url(run)))
    assert "comments/2/edit/" in page and "comments/2/delete/" in page
    assert "comments/1/edit/" not in page and "comments/1/delete/" not in page


def test_an_unknown_comment_is_a_404_with_a_message(obiwan_client, start_run):
    run = start_run(user_id="obiwan")
    response = obiwan_client.post(url(run, "comments/7/delete/"))
    assert response.status_code == 404
    assert "comment 7 not found" in page_of(response)


# --- timeline -------------------------------------------------------------------------------------


def test_timeline_lists_every_event_in_order(obiwan_client, start_run):
    run = start_run(user_id=None)
    follow(obiwan_client, url(run, "claim/"))
    follow(obiwan_client, url(run, "save/"), {"requestedItem": "a"})
    follow(obiwan_client, url(run, "comments/"), {"comment": "note"})
    follow(obiwan_client, url(run, "release/"))
    follow(obiwan_client, url(run, "complete/"), {"requestedItem": "b"})
    page = page_of(obiwan_client.get(url(run)))
    timeline = page.split('data-testid="timeline"')[1].split("</ol>")[0]
    texts = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).strip() for li in re.findall(r"<li[^>]*>(.*?)</li>", timeline, re.S)]
    expected = ["Created for group jedi-council", "Claimed by obiwan", "Progress saved by obiwan",
                "obiwan added comment #1", "Released by obiwan to group jedi-council",
                "Claimed by obiwan", "Completed by obiwan"]  # completing an unassigned run claims it
    assert len(texts) == len(expected)
    for text, start in zip(texts, expected):
        assert text.startswith(start), (text, start)


# --- query count ----------------------------------------------------------------------------------


def test_task_page_query_count_does_not_grow_with_events(obiwan_client, start_run, django_assert_max_num_queries):
    run = start_run(user_id="obiwan")
    with django_assert_max_num_queries(10):
        obiwan_client.get(url(run))
    for i in range(30):
        services.add_comment(run_id=run.run_id, user_id="obiwan", comment=f"c{i}", actor=SYSTEM)
    with django_assert_max_num_queries(10):
        assert "c29" in page_of(obiwan_client.get(url(run)))
