"""The UserTaskRun endpoints: start, get, list a WfRun's runs, complete, save, assign, cancel,
comments. Each success path, then each error path with its status, code and "nothing changed"."""

import pytest

from tests.test_api_support import api, api_users, assert_error, everything, run_path, tokens  # noqa: F401
from usertasks import services
from usertasks.actors import SYSTEM
from usertasks.models import UserTaskRun, WfRun

LIGHTSABER = {"requestedItem": "lightsaber", "justification": "Darth Maul kicked it down the mine shaft"}


@pytest.fixture
def group_run(start_run):
    return start_run(user_group="jedi-council")


@pytest.fixture
def obiwans_run(start_run):
    return start_run(user_id="obiwan", user_group="jedi-council")


# --- start --------------------------------------------------------------------------------------


def test_start_run_for_a_group_is_unassigned_with_an_assigned_event(api, it_request):
    response = api.post("/user-task-runs", {"user_task_def_name": "it-request", "user_group": "jedi-council",
                                            "notes": "Lost on Utapau."})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "UNASSIGNED" and body["user_id"] is None and body["user_group"] == "jedi-council"
    assert body["user_task_def_id"] == {"name": "it-request", "version": 0}
    assert body["notes"] == "Lost on Utapau." and body["epoch"] == 1 and body["results"] == {}
    assert body["output"] is None and body["failure"] is None and body["comments"] == []
    assert len(body["id"]["user_task_guid"]) == 32
    [event] = body["events"]
    assert event["type"] == "ASSIGNED" and event["actor"] == "wf-engine"
    assert (event["old_user_id"], event["old_user_group"], event["new_user_id"], event["new_user_group"]) == (
        None, None, None, "jedi-council")
    run = UserTaskRun.objects.get(user_task_guid=body["id"]["user_task_guid"])
    assert run.wf_run_id == body["id"]["wf_run_id"]


def test_start_run_for_a_user_with_wf_run_callback_and_actions(api, it_request):
    response = api.post("/user-task-runs", {
        "user_task_def_name": "it-request", "user_task_def_version": 0, "wf_run_id": "wf-1", "user_id": "obiwan",
        "callback_url": "https://engine.example/cb", "on_cancellation_exception_name": "request-dropped",
        "actions": [{"type": "REASSIGN", "delay_seconds": 3600, "hook": "ON_TASK_ASSIGNED", "user_group": "jedi-council"}],
    })
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "ASSIGNED" and body["user_id"] == "obiwan" and body["user_group"] is None
    assert body["id"]["wf_run_id"] == "wf-1"
    assert body["on_cancellation_exception_name"] == "request-dropped"
    assert body["actions"] == [{"type": "REASSIGN", "hook": "ON_TASK_ASSIGNED", "delay_seconds": 3600,
                                "user_id": None, "user_group": "jedi-council"}]
    assert WfRun.objects.get(pk="wf-1").callback_url == "https://engine.example/cb"


def test_second_run_of_a_wf_run_may_omit_its_callback_url_but_not_change_it(api, it_request):
    first = {"user_task_def_name": "it-request", "wf_run_id": "wf-1", "user_group": "jedi-council",
             "callback_url": "https://engine.example/cb"}
    assert api.post("/user-task-runs", first).status_code == 201
    assert api.post("/user-task-runs", {**first, "callback_url": None}).status_code == 201
    before = everything()
    message = assert_error(api.post("/user-task-runs", {**first, "callback_url": "https://other.example/"}),
                           400, "INVALID_ARGUMENT")
    assert "callback_url" in message
    assert everything() == before


def test_start_run_of_unknown_def_is_not_found(api):
    before = everything()
    assert_error(api.post("/user-task-runs", {"user_task_def_name": "nope", "user_group": "g"}), 404, "NOT_FOUND")
    assert everything() == before


def test_start_run_of_unknown_def_version_is_not_found(api, it_request):
    body = {"user_task_def_name": "it-request", "user_task_def_version": 3, "user_group": "g"}
    assert_error(api.post("/user-task-runs", body), 404, "NOT_FOUND")
    assert not UserTaskRun.objects.exists()


def test_start_run_without_user_or_group_is_invalid_argument(api, it_request):
    message = assert_error(api.post("/user-task-runs", {"user_task_def_name": "it-request"}), 400, "INVALID_ARGUMENT")
    assert "user_id or a user_group" in message
    assert not UserTaskRun.objects.exists()


def test_start_run_with_blank_group_is_invalid_argument(api, it_request):
    body = {"user_task_def_name": "it-request", "user_group": "  "}
    assert_error(api.post("/user-task-runs", body), 400, "INVALID_ARGUMENT")
    assert not UserTaskRun.objects.exists()


def test_start_run_with_bad_wf_run_id_is_invalid_argument(api, it_request):
    body = {"user_task_def_name": "it-request", "user_group": "g", "wf_run_id": "no spaces/allowed"}
    assert_error(api.post("/user-task-runs", body), 400, "INVALID_ARGUMENT")
    assert not WfRun.objects.exists()


def test_start_run_with_bad_action_is_invalid_argument(api, it_request):
    body = {"user_task_def_name": "it-request", "user_group": "g",
            "actions": [{"type": "REMINDER", "delay_seconds": 10, "user_id": "obiwan"}]}
    message = assert_error(api.post("/user-task-runs", body), 400, "INVALID_ARGUMENT")
    assert "only REASSIGN" in message
    body["actions"] = [{"type": "REMINDER", "delay_seconds": -1}]
    assert_error(api.post("/user-task-runs", body), 400, "INVALID_ARGUMENT")
    body["actions"] = [{"type": "SNOOZE", "delay_seconds": 1}]
    assert_error(api.post("/user-task-runs", body), 400, "INVALID_ARGUMENT")
    assert not UserTaskRun.objects.exists()


def test_start_run_with_unknown_key_is_invalid_argument(api, it_request):
    body = {"user_task_def_name": "it-request", "user_group": "g", "priority": "high"}
    message = assert_error(api.post("/user-task-runs", body), 400, "INVALID_ARGUMENT")
    assert "priority" in message
    assert not UserTaskRun.objects.exists()


def test_plain_user_may_not_start_runs(api, it_request):
    body = {"user_task_def_name": "it-request", "user_group": "jedi-council"}
    assert_error(api.post("/user-task-runs", body, as_="obiwan"), 403, "PERMISSION_DENIED")
    assert not UserTaskRun.objects.exists()


# --- get ----------------------------------------------------------------------------------------


def test_get_run(api, group_run):
    response = api.get(run_path(group_run))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == {"wf_run_id": group_run.wf_run_id, "user_task_guid": group_run.user_task_guid}
    assert body["status"] == "UNASSIGNED" and [e["type"] for e in body["events"]] == ["ASSIGNED"]
    assert set(body) == {"id", "user_task_def_id", "status", "user_id", "user_group", "results", "notes",
                         "scheduled_time", "epoch", "output", "failure", "on_cancellation_exception_name",
                         "actions", "events", "comments"}


def test_get_run_of_my_group_as_plain_user(api, group_run):
    assert api.get(run_path(group_run), as_="yoda").status_code == 200


def test_get_unknown_run_is_not_found(api, group_run):
    assert_error(api.get(f"/user-task-runs/{group_run.wf_run_id}/{'0' * 32}"), 404, "NOT_FOUND")
    assert_error(api.get(f"/user-task-runs/nope/{group_run.user_task_guid}"), 404, "NOT_FOUND")


# --- a WfRun's runs -----------------------------------------------------------------------------


def test_list_wf_run_user_task_runs(api, start_run):
    first = start_run(user_group="jedi-council", wf_run_id="wf-1")
    second = start_run(user_id="mace", user_group="jedi-temple", wf_run_id="wf-1")
    start_run(user_group="jedi-council", wf_run_id="wf-2")
    response = api.get("/wf-runs/wf-1/user-task-runs")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"]["user_task_guid"] for r in results] == [first.user_task_guid, second.user_task_guid]
    assert all(r["events"][0]["type"] == "ASSIGNED" for r in results)


def test_list_wf_run_user_task_runs_shows_a_plain_user_only_their_runs(api, start_run):
    start_run(user_group="jedi-council", wf_run_id="wf-1")
    start_run(user_id="mace", user_group="jedi-temple", wf_run_id="wf-1")
    response = api.get("/wf-runs/wf-1/user-task-runs", as_="mace")
    assert [r["user_id"] for r in response.json()["results"]] == ["mace"]


def test_list_unknown_wf_run_is_not_found(api):
    message = assert_error(api.get("/wf-runs/nope/user-task-runs"), 404, "NOT_FOUND")
    assert "nope" in message


def test_list_wf_run_with_no_visible_run_is_not_found_for_a_plain_user(api, start_run):
    start_run(user_group="jedi-council", wf_run_id="wf-1")
    assert_error(api.get("/wf-runs/wf-1/user-task-runs", as_="mace"), 404, "NOT_FOUND")


# --- complete -----------------------------------------------------------------------------------


def test_complete_run(api, obiwans_run):
    response = api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": LIGHTSABER})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "DONE" and body["user_id"] == "obiwan"
    assert body["output"] == LIGHTSABER and body["results"] == LIGHTSABER
    assert body["events"][-1]["type"] == "COMPLETED" and body["events"][-1]["user_id"] == "obiwan"


def test_complete_unassigned_run_assigns_it_to_the_user_first(api, group_run):
    body = api.post(run_path(group_run, "/complete"), {"user_id": "yoda", "results": {"requestedItem": "stick"}}).json()
    assert body["status"] == "DONE" and body["user_id"] == "yoda" and body["user_group"] == "jedi-council"
    assert [e["type"] for e in body["events"]] == ["ASSIGNED", "ASSIGNED", "COMPLETED"]


def test_complete_as_plain_user_own_run(api, obiwans_run):
    response = api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": LIGHTSABER}, as_="obiwan")
    assert response.status_code == 200
    assert response.json()["events"][-1]["actor"] == "obiwan"


def test_complete_with_invalid_results_lists_every_field_and_changes_nothing(api, obiwans_run):
    before = everything()
    bad = {"justification": 7, "colour": "green"}
    message = assert_error(api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": bad}),
                           400, "INVALID_ARGUMENT")
    assert "justification" in message and "colour" in message and "requestedItem is required" in message
    assert everything() == before


def test_complete_int_field_rejects_decimal_and_bool(api, funds_def, start_run):
    run = start_run(def_name="approve-funds-for-mission", user_id="obiwan")
    before = everything()
    for headcount in (1.5, 2.0, True):
        results = {"amount": 10, "approved": True, "headcount": headcount}
        assert_error(api.post(run_path(run, "/complete"), {"user_id": "obiwan", "results": results}),
                     400, "INVALID_ARGUMENT")
    assert everything() == before
    ok = api.post(run_path(run, "/complete"), {"user_id": "obiwan", "results": {"amount": 10, "approved": True,
                                                                                  "headcount": 3}})
    assert ok.status_code == 200 and ok.json()["output"] == {"amount": 10.0, "approved": True, "headcount": 3}


def test_complete_done_run_is_failed_precondition(api, obiwans_run):
    api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": LIGHTSABER})
    before = everything()
    message = assert_error(api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": LIGHTSABER}),
                           409, "FAILED_PRECONDITION")
    assert "DONE" in message
    assert everything() == before


def test_complete_with_fail_on_mismatched_user_id_is_failed_precondition(api, obiwans_run):
    before = everything()
    body = {"user_id": "yoda", "results": LIGHTSABER, "strategy": "FAIL_ON_MISMATCHED_USER_ID"}
    message = assert_error(api.post(run_path(obiwans_run, "/complete"), body), 409, "FAILED_PRECONDITION")
    assert "obiwan" in message
    assert everything() == before


def test_complete_with_assign_to_new_user_reassigns(api, obiwans_run):
    body = {"user_id": "yoda", "results": LIGHTSABER, "strategy": "ASSIGN_TO_NEW_USER"}
    response = api.post(run_path(obiwans_run, "/complete"), body)
    assert response.status_code == 200 and response.json()["user_id"] == "yoda"


def test_complete_with_unknown_strategy_is_invalid_argument(api, obiwans_run):
    before = everything()
    body = {"user_id": "obiwan", "results": LIGHTSABER, "strategy": "WHATEVER"}
    assert_error(api.post(run_path(obiwans_run, "/complete"), body), 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_complete_with_blank_user_or_missing_results_is_invalid_argument(api, obiwans_run):
    before = everything()
    assert_error(api.post(run_path(obiwans_run, "/complete"), {"user_id": " ", "results": LIGHTSABER}),
                 400, "INVALID_ARGUMENT")
    assert_error(api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan"}), 400, "INVALID_ARGUMENT")
    assert_error(api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": ["lightsaber"]}),
                 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_complete_unknown_run_is_not_found(api, obiwans_run):
    path = f"/user-task-runs/{obiwans_run.wf_run_id}/{'f' * 32}/complete"
    assert_error(api.post(path, {"user_id": "obiwan", "results": LIGHTSABER}), 404, "NOT_FOUND")


# --- save progress ------------------------------------------------------------------------------


def test_save_progress_replaces_results_and_keeps_owner(api, obiwans_run):
    response = api.post(run_path(obiwans_run, "/save"), {"user_id": "obiwan", "results": {"justification": "draft"}})
    assert response.status_code == 200
    body = response.json()
    assert body["results"] == {"justification": "draft"} and body["status"] == "ASSIGNED"
    assert body["user_id"] == "obiwan"
    assert body["events"][-1] | {"time": None} == {"time": None, "type": "SAVED", "actor": "wf-engine",
                                                    "user_id": "obiwan", "results": {"justification": "draft"}}


def test_save_progress_claimed_by_other_fails_by_default(api, obiwans_run):
    before = everything()
    for body in ({"user_id": "yoda", "results": {}}, {"user_id": "yoda", "results": {}, "policy": "FAIL_IF_CLAIMED_BY_OTHER"}):
        message = assert_error(api.post(run_path(obiwans_run, "/save"), body), 409, "FAILED_PRECONDITION")
        assert "IGNORE_CLAIM" in message
    assert everything() == before


def test_save_progress_with_ignore_claim_keeps_owner(api, obiwans_run):
    body = {"user_id": "yoda", "results": {"requestedItem": "stick"}, "policy": "IGNORE_CLAIM"}
    response = api.post(run_path(obiwans_run, "/save"), body)
    assert response.status_code == 200
    assert response.json()["user_id"] == "obiwan" and response.json()["results"] == {"requestedItem": "stick"}


def test_save_progress_with_wrong_type_is_invalid_argument(api, obiwans_run):
    before = everything()
    assert_error(api.post(run_path(obiwans_run, "/save"), {"user_id": "obiwan", "results": {"requestedItem": 1}}),
                 400, "INVALID_ARGUMENT")
    assert_error(api.post(run_path(obiwans_run, "/save"), {"user_id": "obiwan", "results": {}, "policy": "NEVER"}),
                 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_save_progress_of_done_run_is_failed_precondition(api, obiwans_run):
    api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": LIGHTSABER})
    before = everything()
    assert_error(api.post(run_path(obiwans_run, "/save"), {"user_id": "obiwan", "results": {}}),
                 409, "FAILED_PRECONDITION")
    assert everything() == before


def test_save_progress_of_unknown_run_is_not_found(api, it_request):
    assert_error(api.post("/user-task-runs/wf/guid/save", {"user_id": "obiwan", "results": {}}), 404, "NOT_FOUND")


# --- assign -------------------------------------------------------------------------------------


def test_assign_sets_both_fields(api, group_run):
    response = api.post(run_path(group_run, "/assign"), {"user_id": "mace", "user_group": "jedi-temple"})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["user_id"], body["user_group"], body["epoch"]) == ("ASSIGNED", "mace", "jedi-temple", 2)
    assert body["events"][-1]["type"] == "ASSIGNED" and body["events"][-1]["old_user_group"] == "jedi-council"


def test_assign_with_only_user_clears_group(api, group_run):
    body = api.post(run_path(group_run, "/assign"), {"user_id": "sarah"}).json()
    assert (body["user_id"], body["user_group"]) == ("sarah", None)


def test_assign_claimed_run_without_override_is_failed_precondition(api, obiwans_run):
    before = everything()
    message = assert_error(api.post(run_path(obiwans_run, "/assign"), {"user_id": "mace"}), 409, "FAILED_PRECONDITION")
    assert "already assigned to obiwan" in message
    assert everything() == before


def test_assign_claimed_run_with_override_claim(api, obiwans_run):
    body = {"user_id": "mace", "user_group": "jedi-temple", "override_claim": True}
    response = api.post(run_path(obiwans_run, "/assign"), body)
    assert response.status_code == 200 and response.json()["user_id"] == "mace"


def test_assign_without_user_or_group_is_invalid_argument(api, group_run):
    before = everything()
    assert_error(api.post(run_path(group_run, "/assign"), {}), 400, "INVALID_ARGUMENT")
    assert_error(api.post(run_path(group_run, "/assign"), {"override_claim": "yes", "user_id": "x"}),
                 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_assign_done_run_is_failed_precondition(api, obiwans_run):
    api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": LIGHTSABER})
    before = everything()
    body = {"user_id": "mace", "override_claim": True}
    assert_error(api.post(run_path(obiwans_run, "/assign"), body), 409, "FAILED_PRECONDITION")
    assert everything() == before


def test_plain_user_claims_and_releases_a_run_of_their_group(api, group_run):
    claimed = api.post(run_path(group_run, "/assign"), {"user_id": "yoda", "user_group": "jedi-council"}, as_="yoda")
    assert claimed.status_code == 200 and claimed.json()["status"] == "ASSIGNED"
    released = api.post(run_path(group_run, "/assign"), {"user_group": "jedi-council"}, as_="yoda")
    assert released.status_code == 200 and released.json()["status"] == "UNASSIGNED"


def test_plain_user_may_not_reassign_to_someone_else(api, group_run):
    before = everything()
    body = {"user_id": "obiwan", "user_group": "jedi-council"}
    assert_error(api.post(run_path(group_run, "/assign"), body, as_="yoda"), 403, "PERMISSION_DENIED")
    assert everything() == before


def test_assign_unknown_run_is_not_found(api, it_request):
    assert_error(api.post("/user-task-runs/wf/guid/assign", {"user_id": "obiwan"}), 404, "NOT_FOUND")


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_without_body_uses_the_default_message(api, group_run):
    response = api.post(run_path(group_run, "/cancel"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "CANCELLED"
    assert body["failure"] == {"type": "ERROR", "name": "USER_TASK_CANCELLED", "message": "UserTaskRun was cancelled"}
    assert body["events"][-1]["type"] == "CANCELLED" and body["events"][-1]["message"] == "UserTaskRun was cancelled"


def test_cancel_with_message_and_exception_name(api, start_run):
    run = start_run(user_group="jedi-council", on_cancellation_exception_name="request-dropped")
    body = api.post(run_path(run, "/cancel"), {"message": "Mission called off."}).json()
    assert body["failure"] == {"type": "EXCEPTION", "name": "request-dropped", "message": "Mission called off."}


def test_cancel_done_run_is_failed_precondition(api, obiwans_run):
    api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": LIGHTSABER})
    before = everything()
    assert_error(api.post(run_path(obiwans_run, "/cancel"), {}), 409, "FAILED_PRECONDITION")
    assert everything() == before


def test_cancel_cancelled_run_is_failed_precondition(api, group_run):
    api.post(run_path(group_run, "/cancel"))
    before = everything()
    assert_error(api.post(run_path(group_run, "/cancel")), 409, "FAILED_PRECONDITION")
    assert everything() == before


def test_plain_user_may_not_cancel(api, obiwans_run):
    before = everything()
    assert_error(api.post(run_path(obiwans_run, "/cancel"), as_="obiwan"), 403, "PERMISSION_DENIED")
    assert everything() == before


def test_cancel_with_unknown_key_is_invalid_argument(api, group_run):
    before = everything()
    assert_error(api.post(run_path(group_run, "/cancel"), {"reason": "x"}), 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_cancel_unknown_run_is_not_found(api, it_request):
    assert_error(api.post("/user-task-runs/wf/guid/cancel"), 404, "NOT_FOUND")


# --- comments -----------------------------------------------------------------------------------


def test_add_edit_delete_comment(api, obiwans_run):
    added = api.post(run_path(obiwans_run, "/comments"), {"user_id": "obiwan", "comment": "Needed soon."}, as_="obiwan")
    assert added.status_code == 201
    assert added.json()["comments"] == [{"user_comment_id": 1, "user_id": "obiwan", "comment": "Needed soon.",
                                         "deleted": False}]
    edited = api.put(run_path(obiwans_run, "/comments/1"), {"user_id": "obiwan", "comment": "Today."}, as_="obiwan")
    assert edited.status_code == 200 and edited.json()["comments"][0]["comment"] == "Today."
    deleted = api.delete(run_path(obiwans_run, "/comments/1"), {"user_id": "obiwan"}, as_="obiwan")
    assert deleted.status_code == 200
    assert deleted.json()["comments"] == [{"user_comment_id": 1, "user_id": "obiwan", "comment": None, "deleted": True}]
    assert [e["type"] for e in deleted.json()["events"]][-3:] == ["COMMENT_ADDED", "COMMENT_EDITED", "COMMENT_DELETED"]


def test_comment_on_a_done_run_is_allowed(api, obiwans_run):
    api.post(run_path(obiwans_run, "/complete"), {"user_id": "obiwan", "results": LIGHTSABER})
    assert api.post(run_path(obiwans_run, "/comments"), {"user_id": "obiwan", "comment": "Thanks"}).status_code == 201


def test_blank_comment_is_invalid_argument(api, obiwans_run):
    before = everything()
    assert_error(api.post(run_path(obiwans_run, "/comments"), {"user_id": "obiwan", "comment": " "}),
                 400, "INVALID_ARGUMENT")
    assert_error(api.post(run_path(obiwans_run, "/comments"), {"user_id": "obiwan"}), 400, "INVALID_ARGUMENT")
    assert everything() == before


def test_edit_or_delete_unknown_comment_is_not_found(api, obiwans_run):
    before = everything()
    assert_error(api.put(run_path(obiwans_run, "/comments/9"), {"user_id": "obiwan", "comment": "x"}), 404, "NOT_FOUND")
    assert_error(api.delete(run_path(obiwans_run, "/comments/9"), {"user_id": "obiwan"}), 404, "NOT_FOUND")
    assert everything() == before


def test_edit_or_delete_deleted_comment_is_failed_precondition(api, obiwans_run):
    services.add_comment(run_id=obiwans_run.run_id, user_id="obiwan", comment="x", actor=SYSTEM)
    services.delete_comment(run_id=obiwans_run.run_id, user_comment_id=1, user_id="obiwan", actor=SYSTEM)
    before = everything()
    assert_error(api.put(run_path(obiwans_run, "/comments/1"), {"user_id": "obiwan", "comment": "y"}),
                 409, "FAILED_PRECONDITION")
    assert_error(api.delete(run_path(obiwans_run, "/comments/1"), {"user_id": "obiwan"}), 409, "FAILED_PRECONDITION")
    assert everything() == before


def test_only_the_author_may_edit_a_comment(api, start_run):
    run = start_run(user_group="jedi-council")
    services.add_comment(run_id=run.run_id, user_id="obiwan", comment="mine", actor=SYSTEM)
    before = everything()
    assert_error(api.put(run_path(run, "/comments/1"), {"user_id": "yoda", "comment": "y"}, as_="yoda"),
                 403, "PERMISSION_DENIED")
    assert_error(api.delete(run_path(run, "/comments/1"), {"user_id": "yoda"}, as_="yoda"), 403, "PERMISSION_DENIED")
    assert everything() == before


def test_comment_id_out_of_range_is_invalid_argument(api, obiwans_run):
    assert_error(api.put(run_path(obiwans_run, "/comments/0"), {"user_id": "obiwan", "comment": "x"}),
                 400, "INVALID_ARGUMENT")
    assert_error(api.delete(run_path(obiwans_run, "/comments/99999999999"), {"user_id": "obiwan"}),
                 400, "INVALID_ARGUMENT")


def test_comment_on_unknown_run_is_not_found(api, it_request):
    assert_error(api.post("/user-task-runs/wf/guid/comments", {"user_id": "obiwan", "comment": "x"}), 404, "NOT_FOUND")
