"""The seed guide (shared/seed/user-tasks-guide.txt), step by step, over HTTP with a token made
by `manage.py create_api_token`: put it-request, start a run for jedi-council, search it, get it
and its def's fields, assign to obiwan, save progress as obi-wan with both policies, complete as
obiwan, read the DONE run's results and output, and fail to cancel it."""

from datetime import datetime, timedelta, timezone
from io import StringIO

from django.core.management import call_command

from tests.test_api_support import Api, api_users, assert_error, everything  # noqa: F401


def test_the_seed_guide_over_http(client, api_users):
    out = StringIO()
    call_command("create_api_token", "wf-engine", stdout=out)
    engine = Api(client, {"wf-engine": out.getvalue().strip().splitlines()[-1]})

    # A UserTaskDef with the guide's two fields.
    put = engine.post("/user-task-defs", {
        "name": "it-request",
        "description": "Ask the quartermaster for equipment.",
        "fields": [
            {"name": "requestedItem", "display_name": "Requested item", "type": "STR", "required": True},
            {"name": "justification", "display_name": "Justification", "type": "STR"},
        ],
    })
    assert put.status_code == 201 and put.json()["version"] == 0

    # The workflow reaches the USER_TASK node: a run for the jedi-council group.
    started = engine.post("/user-task-runs", {"user_task_def_name": "it-request", "user_group": "jedi-council",
                                              "wf_run_id": "e0e49b53298a4965b059a1a5df095b09"})
    assert started.status_code == 201
    run_id = started.json()["id"]
    path = f"/user-task-runs/{run_id['wf_run_id']}/{run_id['user_task_guid']}"

    # Search: jedi-council's UNASSIGNED it-request runs created in the past week.
    now = datetime.now(timezone.utc)
    search = engine.get("/user-task-runs", {
        "user_group": "jedi-council", "user_task_def_name": "it-request", "status": "UNASSIGNED",
        "earliest_start": (now - timedelta(days=7)).isoformat(), "latest_start": (now + timedelta(minutes=1)).isoformat(),
    })
    assert search.status_code == 200
    assert search.json() == {"results": [run_id], "bookmark": None}

    # Get the run, then its def's fields to build a form.
    run = engine.get(path).json()
    assert (run["status"], run["user_id"], run["user_group"]) == ("UNASSIGNED", None, "jedi-council")
    udef = engine.get(f"/user-task-defs/{run['user_task_def_id']['name']}/{run['user_task_def_id']['version']}").json()
    assert [(f["name"], f["type"], f["required"]) for f in udef["fields"]] == [
        ("requestedItem", "STR", True), ("justification", "STR", False)]

    # Assign it to obiwan.
    assigned = engine.post(f"{path}/assign", {"user_id": "obiwan", "user_group": "jedi-council"})
    assert assigned.status_code == 200 and assigned.json()["status"] == "ASSIGNED"

    # obi-wan (with a hyphen: someone else) saves progress. The default policy refuses...
    draft = {"requestedItem": "some-field", "justification": "lightsaber"}
    before = everything()
    refused = engine.post(f"{path}/save", {"user_id": "obi-wan", "results": draft, "policy": "FAIL_IF_CLAIMED_BY_OTHER"})
    assert "obiwan" in assert_error(refused, 409, "FAILED_PRECONDITION")
    assert everything() == before
    # ...IGNORE_CLAIM saves, and the owner stays obiwan.
    saved = engine.post(f"{path}/save", {"user_id": "obi-wan", "results": draft, "policy": "IGNORE_CLAIM"})
    assert saved.status_code == 200
    assert saved.json()["user_id"] == "obiwan" and saved.json()["results"] == draft
    assert saved.json()["events"][-1]["type"] == "SAVED" and saved.json()["events"][-1]["user_id"] == "obi-wan"

    # obiwan completes it.
    results = {"requestedItem": "lightsaber", "justification": "Darth Maul kicked it down the mine shaft"}
    done = engine.post(f"{path}/complete", {"user_id": "obiwan", "results": results})
    assert done.status_code == 200

    # The workflow reads the DONE run: results and the JSON_OBJ output.
    final = engine.get(path).json()
    assert final["status"] == "DONE" and final["user_id"] == "obiwan"
    assert final["results"] == results and final["output"] == results
    assert [e["type"] for e in final["events"]] == ["ASSIGNED", "ASSIGNED", "SAVED", "COMPLETED"]
    assert engine.get(f"/wf-runs/{run_id['wf_run_id']}/user-task-runs").json()["results"] == [final]

    # Cancelling a DONE run is refused, and changes nothing.
    before = everything()
    assert_error(engine.post(f"{path}/cancel", {"message": "too late"}), 409, "FAILED_PRECONDITION")
    assert everything() == before
