"""Random operation sequences against the services (DESIGN §2 invariants, §3 behaviour, §7 rights).

A Hypothesis state machine starts, assigns, claims, releases, saves, completes, cancels and
comments on runs with random — often invalid — arguments and random actors. After every call it
checks that:
- the outcome (success or the error code) is what DESIGN §3's order of checks prescribes;
- a refused call changed nothing at all (every column of every row, events included);
- a successful call changed only its run and appended exactly the events it should;
and after every step, for every run: the §2 invariants hold, DONE/CANCELLED never change, the
epoch equals the number of ASSIGNED events, and replaying the event log gives the run's owner,
group, status and results.
"""

import math
from collections import Counter

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule, run_state_machine_as_test

from tests.conftest import ADMIN, ENGINE, FUNDS_FIELDS, IT_REQUEST_FIELDS, MACE, OBIWAN, YODA
from usertasks import services
from usertasks.exceptions import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, UserTaskError
from usertasks.models import (
    CallbackDelivery, Notification, ScheduledAction, UserTaskDef, UserTaskEvent, UserTaskRun, UserTaskRunId, WfRun,
)

IA, NF, PD, FP, OK = InvalidArgument, NotFound, PermissionDenied, FailedPrecondition, "OK"
FUNDS = "approve-funds-for-mission"
FIELDS = {"it-request": IT_REQUEST_FIELDS, FUNDS: FUNDS_FIELDS}
OPEN = ("UNASSIGNED", "ASSIGNED")
FINAL = ("DONE", "CANCELLED")
DEFAULT_CANCEL_MESSAGE = "UserTaskRun was cancelled"

ACTORS = (ENGINE, ADMIN, OBIWAN, YODA, MACE)
PLAIN = {a.name: a for a in (OBIWAN, YODA, MACE)}
actors = st.sampled_from(ACTORS)


def valid_or_not(good, bad):
    """Mostly a valid value, else a malformed one (one draw, so failing examples read well; the
    valid branch comes first because Hypothesis favours, and shrinks towards, small numbers)."""
    good = good if isinstance(good, st.SearchStrategy) else st.sampled_from(good)
    bad = bad if isinstance(bad, st.SearchStrategy) else st.sampled_from(bad)
    return st.integers(0, 3).flatmap(lambda n: bad if n == 3 else good)


USERS = ["obiwan", "yoda", "mace", "wf-engine", "qui-gon"]
BAD_IDENTITIES = ["", "   ", 42, "x" * 257, ["obiwan"]]
GROUPS = ["jedi-council", "jedi-temple", "padawans"]


def user_id_for(actor, *, absent_ok=False):
    """Mostly the actor themselves (all a plain user may pass), else anyone, else malformed."""
    good = [actor.name, actor.name, *USERS] + ([None] if absent_ok else [])
    return valid_or_not(good, BAD_IDENTITIES + ([] if absent_ok else [None]))


def user_group_for(run):
    return valid_or_not([run["user_group"], run["user_group"], None, *GROUPS], BAD_IDENTITIES)


good_owner = st.sampled_from(
    [("obiwan", "jedi-council"), (None, "jedi-council"), ("yoda", None), (None, "jedi-temple"), ("mace", "jedi-temple")]
)
def_names = valid_or_not(["it-request", FUNDS], ["no-such-def", "", None, 5])
start_user_ids = valid_or_not([None, "obiwan", "yoda", "mace"], BAD_IDENTITIES)
start_user_groups = valid_or_not([None, "jedi-council", "jedi-temple"], BAD_IDENTITIES)
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.5, 2.0, -0.25, 2**63, math.inf]),
    st.sampled_from(["", " ", "x", "=1+1", "<script>"]),
    st.just([1]),
    st.just({"a": 1}),
)
any_results = st.one_of(
    st.sampled_from(
        [
            {},
            {"requestedItem": ""},
            {"requestedItem": "   ", "justification": "j"},
            {"amount": "12"},
            {"headcount": 2.0, "amount": 1, "approved": True},
            {"headcount": True, "amount": 1, "approved": True},
            {"approved": 1, "amount": 1},
            {"amount": 2, "approved": None},
            {"bogus": 1},
            {"requestedItem": "a lightsaber"},
            {"amount": 1.5, "approved": False},
            None,
            [],
            "requestedItem",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["requestedItem", "justification", "amount", "approved", "reason", "headcount", "bogus"]),
        json_values,
        max_size=4,
    ),
)
VALID_RESULTS = {
    "it-request": [{"requestedItem": "a lightsaber"}, {"requestedItem": "a droid", "justification": "mine broke"},
                   {"requestedItem": "x", "justification": None}],
    FUNDS: [{"amount": 1.5, "approved": False}, {"amount": 3, "approved": True, "headcount": 2, "reason": "r"},
            {"amount": -2, "approved": True, "reason": None}],
}


def results_for(run):
    return valid_or_not(VALID_RESULTS[run["user_task_def_name"]], any_results)


strategies = valid_or_not([None, "ASSIGN_TO_NEW_USER", "FAIL_ON_MISMATCHED_USER_ID"], ["assign_to_new_user", "", "bogus", 1])
policies = valid_or_not([None, "FAIL_IF_CLAIMED_BY_OTHER", "IGNORE_CLAIM"], ["bogus", "", "ignore_claim"])
override_claims = valid_or_not([False, True], ["yes", 1, 0])
comments = valid_or_not(["Looks good", "<b>hi</b>", "=HYPERLINK(\"x\")"], ["", "  ", None, 7])
comment_ids = valid_or_not([1, 1, 2, 3], [0, -1, None, "1", True, 1.0])
messages = valid_or_not([None, "", "Workflow moved on"], [5, ["no"]])
OUTCOMES: Counter = Counter()  # (operation, outcome) -> calls, across all examples of one test run
BAD_RUN_IDS = [
    UserTaskRunId("no-such-wf-run", "0" * 32),  # well-formed, absent -> NOT_FOUND
    ("", "0" * 32),
    (" ", " "),
    None,
    "flat-string",
    ("a", "b", "c"),
]


# --- what DESIGN says should happen -------------------------------------------------------------


def bad_required(value) -> bool:
    return not isinstance(value, str) or not value.strip() or len(value) > 256


def bad_optional(value) -> bool:
    return value is not None and bad_required(value)


def well_formed_id(run_id) -> bool:
    return (
        isinstance(run_id, tuple)
        and len(run_id) == 2
        and all(isinstance(part, str) and part.strip() for part in run_id)
    )


def sees(actor, run) -> bool:
    """DESIGN §7 (written out independently of actors.py)."""
    if actor in (ENGINE, ADMIN):
        return True
    return run["user_id"] == actor.name or (run["user_group"] is not None and run["user_group"] in actor.groups)


def privileged(actor) -> bool:
    return actor in (ENGINE, ADMIN)


def value_ok(ftype: str, value) -> bool:
    if ftype == "STR":
        return isinstance(value, str)
    if ftype == "INT":
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    if ftype == "DOUBLE":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, bool)


def results_verdict(def_name: str, results: dict, *, require_all: bool):
    """True (valid), False (invalid) or None (DESIGN does not say: a blank required string)."""
    fields = {f["name"]: f for f in FIELDS[def_name]}
    for key, value in results.items():
        if key not in fields or (value is not None and not value_ok(fields[key]["type"], value)):
            return False
    if require_all:
        for name, field in fields.items():
            if field.get("required") and results.get(name) is None:
                return False
        if any(fields[k].get("required") and isinstance(v, str) and not v.strip() for k, v in results.items()):
            return None
    return True


def stored_results(def_name: str, results: dict) -> dict:
    types = {f["name"]: f["type"] for f in FIELDS[def_name]}
    return {k: (float(v) if types[k] == "DOUBLE" else v) for k, v in results.items() if v is not None}


def comment_state(events: list[dict], comment_id) -> dict | None:
    state = None
    for event in events:
        if event["payload"].get("user_comment_id") != comment_id:
            continue
        if event["type"] == "COMMENT_ADDED":
            state = {"author": event["payload"]["user_id"], "deleted": False}
        elif event["type"] == "COMMENT_DELETED" and state is not None:
            state["deleted"] = True
    return state


class World:
    """Every row the services may write, as plain values."""

    def __init__(self):
        self.runs = {
            row["pk"]: row
            for row in UserTaskRun.objects.values(
                "pk", "wf_run_id", "user_task_guid", "user_task_def_id", "user_task_def_name", "status", "user_id",
                "user_group", "results", "notes", "scheduled_time", "epoch", "on_cancellation_exception_name",
                "actions", "output", "failure", "updated_at",
            )
        }
        self.events = list(
            UserTaskEvent.objects.order_by("pk").values("pk", "user_task_run_id", "type", "actor", "payload", "time")
        )
        self.wf_runs = list(WfRun.objects.order_by("pk").values_list("pk", "callback_url", "created_at"))
        self.defs = list(UserTaskDef.objects.order_by("pk").values_list("pk", "name", "version"))
        self.side_effects = [
            list(model.objects.order_by("pk").values()) for model in (ScheduledAction, CallbackDelivery, Notification)
        ]

    def key(self):
        return (self.runs, self.events, self.wf_runs, self.defs, self.side_effects)

    def run(self, run_id):
        if not well_formed_id(run_id):
            return None
        for row in self.runs.values():
            if (row["wf_run_id"], row["user_task_guid"]) == tuple(run_id):
                return row
        return None

    def events_of(self, pk) -> list[dict]:
        return [e for e in self.events if e["user_task_run_id"] == pk]


# --- the machine --------------------------------------------------------------------------------


class UserTaskRunMachine(RuleBasedStateMachine):
    runs = Bundle("runs")

    def __init__(self):
        super().__init__()
        # Every example starts from the defs alone and leaves nothing behind.
        self._savepoint = transaction.savepoint()
        self.final_status: dict[int, str] = {}
        self.seen_events: dict[int, list] = {}

    def teardown(self):
        transaction.savepoint_rollback(self._savepoint)

    # The one place calls are made: predicts, calls, compares, checks what changed.
    def _call(self, op, expected, call, *, run=None, on_success=None):
        before = World()
        err = None
        try:
            value = call()
        except UserTaskError as raised:
            err, outcome = raised, type(raised)
            assert err.message, f"{op}: {err.code} without a message"
        else:
            outcome = OK
        after = World()
        allowed = expected if isinstance(expected, set) else {expected}
        OUTCOMES[(op.split(" ")[0], outcome if outcome == OK else outcome.__name__)] += 1
        assert outcome in allowed, (
            f"{op}: expected {' or '.join(a if a == OK else a.__name__ for a in allowed)}, "
            f"got {outcome if outcome == OK else outcome.__name__}: {err and err.message}"
        )
        if outcome != OK:
            assert after.key() == before.key(), f"{op} was refused with {err.code} but changed the database"
            return None
        # A success appends events to its own run only and never rewrites history.
        assert after.events[: len(before.events)] == before.events, f"{op} rewrote existing events"
        new_events = after.events[len(before.events) :]
        assert new_events, f"{op} succeeded without an event"
        if run is not None:
            assert {e["user_task_run_id"] for e in new_events} == {run["pk"]}
            others_before = {pk: r for pk, r in before.runs.items() if pk != run["pk"]}
            others_after = {pk: r for pk, r in after.runs.items() if pk != run["pk"]}
            assert others_before == others_after, f"{op} changed another run"
            if on_success:
                on_success(before.runs[run["pk"]], after.runs[run["pk"]], new_events)
        elif on_success:
            on_success(before, after, new_events)
        return value

    # --- start -------------------------------------------------------------------------------

    def _start(self, actor, def_name, user_id, user_group):
        if bad_required(def_name) or bad_optional(user_id) or bad_optional(user_group) or (
            user_id is None and user_group is None
        ):
            expected = IA
        elif def_name not in FIELDS:
            expected = NF
        elif not privileged(actor):
            expected = PD
        else:
            expected = OK

        def check(before, after, new_events):
            (pk,) = set(after.runs) - set(before.runs)
            row = after.runs[pk]
            assert (row["user_id"], row["user_group"], row["epoch"]) == (user_id, user_group, 1)
            assert row["status"] == ("ASSIGNED" if user_id else "UNASSIGNED")
            assert [(e["type"], e["actor"], e["payload"]) for e in new_events] == [
                ("ASSIGNED", actor.name,
                 {"old_user_id": None, "old_user_group": None, "new_user_id": user_id, "new_user_group": user_group})
            ]

        run = self._call(
            "start",
            expected,
            lambda: services.start_user_task_run(
                user_task_def_name=def_name, user_id=user_id, user_group=user_group, actor=actor
            ),
            on_success=check,
        )
        return multiple() if run is None else run.run_id

    @initialize(target=runs, def_name=st.sampled_from(["it-request", FUNDS]), owner=good_owner)
    def first_run(self, def_name, owner):
        return self._start(ENGINE, def_name, *owner)

    @rule(target=runs, actor=actors, def_name=def_names, user_id=start_user_ids, user_group=start_user_groups)
    def start(self, actor, def_name, user_id, user_group):
        return self._start(actor, def_name, user_id, user_group)

    @rule(target=runs, def_name=st.sampled_from(["it-request", FUNDS]), owner=good_owner)
    def start_valid(self, def_name, owner):
        return self._start(ENGINE, def_name, *owner)

    # --- assignment --------------------------------------------------------------------------

    @rule(run_id=runs, actor=actors, override_claim=override_claims, data=st.data())
    def assign(self, run_id, actor, override_claim, data):
        run = World().run(run_id)
        user_id = data.draw(user_id_for(actor, absent_ok=True), label="user_id")
        user_group = data.draw(user_group_for(run), label="user_group")
        self._assign(run_id, actor, user_id, user_group, override_claim)

    def _assign(self, run_id, actor, user_id, user_group, override_claim):
        run = World().run(run_id)
        release = False
        if bad_optional(user_id) or bad_optional(user_group) or (user_id is None and user_group is None) or (
            not isinstance(override_claim, bool)
        ):
            expected = IA
        elif not sees(actor, run):
            expected = NF
        else:
            if privileged(actor):
                allowed = True
            else:
                # §7: a member may claim an UNASSIGNED run of their group or release their own.
                claim = user_id == actor.name and user_group == run["user_group"] and user_group in actor.groups
                release = user_id is None and user_group == run["user_group"] and run["user_id"] == actor.name
                taking = claim and override_claim and run["user_id"] not in (None, actor.name)
                allowed = (claim or release) and not taking
            if not allowed:
                expected = PD
            elif run["status"] in FINAL:
                expected = FP
            elif run["user_id"] is not None and not (override_claim or release):
                expected = FP
            else:
                expected = OK

        def check(old, new, events):
            assert (new["user_id"], new["user_group"]) == (user_id, user_group)
            assert new["status"] == ("ASSIGNED" if user_id else "UNASSIGNED")
            assert new["epoch"] == old["epoch"] + 1
            assert [(e["type"], e["actor"], e["payload"]) for e in events] == [
                ("ASSIGNED", actor.name, {"old_user_id": old["user_id"], "old_user_group": old["user_group"],
                                          "new_user_id": user_id, "new_user_group": user_group})
            ]

        self._call(
            "assign",
            expected,
            lambda: services.assign_user_task_run(
                run_id=run_id, user_id=user_id, user_group=user_group, override_claim=override_claim, actor=actor
            ),
            run=run,
            on_success=check,
        )

    @rule(run_id=runs, actor=actors)
    def claim(self, run_id, actor):
        run = World().run(run_id)
        if not sees(actor, run):
            expected = NF
        elif not privileged(actor) and run["user_group"] not in actor.groups:
            expected = PD
        elif run["status"] in FINAL or run["user_id"] is not None:
            expected = FP
        else:
            expected = OK

        def check(old, new, events):
            assert (new["status"], new["user_id"], new["user_group"]) == ("ASSIGNED", actor.name, old["user_group"])
            assert [e["type"] for e in events] == ["ASSIGNED"]

        self._call("claim", expected, lambda: services.claim_user_task_run(run_id=run_id, actor=actor), run=run,
                   on_success=check)

    @rule(run_id=runs, actor=actors)
    def release(self, run_id, actor):
        run = World().run(run_id)
        if not sees(actor, run):
            expected = NF
        elif not privileged(actor) and run["user_id"] != actor.name:
            expected = PD
        elif run["status"] in FINAL or run["user_id"] is None or run["user_group"] is None:
            expected = FP
        else:
            expected = OK

        def check(old, new, events):
            assert (new["status"], new["user_id"], new["user_group"]) == ("UNASSIGNED", None, old["user_group"])
            assert [e["type"] for e in events] == ["ASSIGNED"]

        self._call("release", expected, lambda: services.release_user_task_run(run_id=run_id, actor=actor), run=run,
                   on_success=check)

    # --- work ----------------------------------------------------------------------------------

    def _work_expectation(self, actor, run, user_id):
        """Steps 2-3 of complete and save; None when both pass."""
        if not sees(actor, run):
            return NF
        if not privileged(actor):
            if user_id != actor.name:
                return PD
            if run["user_id"] is not None and run["user_id"] != actor.name:
                return PD
            if run["user_id"] is None and run["user_group"] not in actor.groups:
                return PD
        return None

    @rule(run_id=runs, actor=actors, strategy=strategies, data=st.data())
    def complete(self, run_id, actor, strategy, data):
        run = World().run(run_id)
        user_id = data.draw(user_id_for(actor), label="user_id")
        results = data.draw(results_for(run), label="results")
        self._complete(run_id, actor, user_id, results, strategy)

    def _complete(self, run_id, actor, user_id, results, strategy):
        run = World().run(run_id)
        if bad_required(user_id) or strategy not in (None, "ASSIGN_TO_NEW_USER", "FAIL_ON_MISMATCHED_USER_ID") or (
            not isinstance(results, dict)
        ):
            expected = IA
        else:
            expected = self._work_expectation(actor, run, user_id)
            if expected is None:
                if run["status"] in FINAL:
                    expected = FP
                elif strategy == "FAIL_ON_MISMATCHED_USER_ID" and run["user_id"] not in (None, user_id):
                    expected = FP
                else:
                    verdict = results_verdict(run["user_task_def_name"], results, require_all=True)
                    expected = {True: OK, False: IA, None: {OK, IA}}[verdict]

        def check(old, new, events):
            assert (new["status"], new["user_id"], new["user_group"]) == ("DONE", user_id, old["user_group"])
            assert new["output"] == new["results"] == stored_results(old["user_task_def_name"], results)
            kinds = ["COMPLETED"] if old["user_id"] == user_id else ["ASSIGNED", "COMPLETED"]
            assert [e["type"] for e in events] == kinds
            assert events[-1]["payload"] == {"user_id": user_id}
            assert new["epoch"] == old["epoch"] + (len(kinds) - 1)

        self._call(
            "complete",
            expected,
            lambda: services.complete_user_task_run(
                run_id=run_id, user_id=user_id, results=results, strategy=strategy, actor=actor
            ),
            run=run,
            on_success=check,
        )

    @rule(run_id=runs, actor=actors, policy=policies, data=st.data())
    def save(self, run_id, actor, policy, data):
        run = World().run(run_id)
        user_id = data.draw(user_id_for(actor), label="user_id")
        results = data.draw(results_for(run), label="results")
        self._save(run_id, actor, user_id, results, policy)

    def _save(self, run_id, actor, user_id, results, policy):
        run = World().run(run_id)
        if bad_required(user_id) or policy not in (None, "FAIL_IF_CLAIMED_BY_OTHER", "IGNORE_CLAIM") or (
            not isinstance(results, dict)
        ):
            expected = IA
        else:
            expected = self._work_expectation(actor, run, user_id)
            if expected is None:
                if run["status"] in FINAL:
                    expected = FP
                elif policy != "IGNORE_CLAIM" and run["user_id"] not in (None, user_id):
                    expected = FP
                else:
                    expected = OK if results_verdict(run["user_task_def_name"], results, require_all=False) else IA

        def check(old, new, events):
            assert {k: new[k] for k in ("status", "user_id", "user_group", "epoch", "output")} == {
                k: old[k] for k in ("status", "user_id", "user_group", "epoch", "output")
            }, "save changed ownership"
            assert new["results"] == stored_results(old["user_task_def_name"], results)
            assert [(e["type"], e["payload"]) for e in events] == [
                ("SAVED", {"user_id": user_id, "results": new["results"]})
            ]

        self._call(
            "save",
            expected,
            lambda: services.save_user_task_run_progress(
                run_id=run_id, user_id=user_id, results=results, policy=policy, actor=actor
            ),
            run=run,
            on_success=check,
        )

    @rule(run_id=runs, actor=actors, message=messages)
    def cancel(self, run_id, actor, message):
        run = World().run(run_id)
        if message is not None and not isinstance(message, str):
            expected = IA
        elif not sees(actor, run):
            expected = NF
        elif not privileged(actor):
            expected = PD
        elif run["status"] in FINAL:
            expected = FP
        else:
            expected = OK

        def check(old, new, events):
            said = message or DEFAULT_CANCEL_MESSAGE
            assert (new["status"], new["user_id"], new["user_group"]) == ("CANCELLED", old["user_id"], old["user_group"])
            assert new["failure"] == {"type": "ERROR", "name": "USER_TASK_CANCELLED", "message": said}
            assert [(e["type"], e["payload"]) for e in events] == [("CANCELLED", {"message": said})]

        self._call("cancel", expected, lambda: services.cancel_user_task_run(run_id=run_id, message=message, actor=actor),
                   run=run, on_success=check)

    # --- comments ----------------------------------------------------------------------------

    @rule(run_id=runs, actor=actors, comment=comments, data=st.data())
    def add_comment(self, run_id, actor, comment, data):
        self._add_comment(run_id, actor, data.draw(user_id_for(actor), label="user_id"), comment)

    def _add_comment(self, run_id, actor, user_id, comment):
        world = World()
        run = world.run(run_id)
        if bad_required(user_id) or bad_required(comment):
            expected = IA
        elif not sees(actor, run):
            expected = NF
        elif not privileged(actor) and user_id != actor.name:
            expected = PD
        else:
            expected = OK
        added = sum(1 for e in world.events_of(run["pk"]) if e["type"] == "COMMENT_ADDED") if run else 0

        def check(old, new, events):
            assert {k: v for k, v in new.items() if k != "updated_at"} == {
                k: v for k, v in old.items() if k != "updated_at"
            }
            assert [(e["type"], e["payload"]) for e in events] == [
                ("COMMENT_ADDED", {"user_comment_id": added + 1, "user_id": user_id, "comment": comment})
            ]

        self._call("add_comment", expected,
                   lambda: services.add_comment(run_id=run_id, user_id=user_id, comment=comment, actor=actor),
                   run=run, on_success=check)

    def _comment_change_expectation(self, world, run, actor, comment_id, user_id, text_bad):
        if (
            not isinstance(comment_id, int) or isinstance(comment_id, bool) or comment_id < 1
            or bad_required(user_id) or text_bad
        ):
            return IA
        if not sees(actor, run):
            return NF
        state = comment_state(world.events_of(run["pk"]), comment_id)
        if state is None:
            return NF
        if not privileged(actor) and (user_id != actor.name or state["author"] != user_id):
            return PD
        if state["deleted"]:
            return FP
        return OK

    @rule(run_id=runs, actor=actors, comment_id=comment_ids, comment=comments, data=st.data())
    def edit_comment(self, run_id, actor, comment_id, comment, data):
        self._edit_comment(run_id, actor, comment_id, data.draw(user_id_for(actor), label="user_id"), comment)

    def _edit_comment(self, run_id, actor, comment_id, user_id, comment):
        world = World()
        run = world.run(run_id)
        expected = self._comment_change_expectation(world, run, actor, comment_id, user_id, bad_required(comment))

        def check(old, new, events):
            assert {k: v for k, v in new.items() if k != "updated_at"} == {
                k: v for k, v in old.items() if k != "updated_at"
            }
            assert [(e["type"], e["payload"]) for e in events] == [
                ("COMMENT_EDITED", {"user_comment_id": comment_id, "user_id": user_id, "comment": comment})
            ]

        self._call(
            "edit_comment",
            expected,
            lambda: services.edit_comment(
                run_id=run_id, user_comment_id=comment_id, user_id=user_id, comment=comment, actor=actor
            ),
            run=run,
            on_success=check,
        )

    @rule(run_id=runs, actor=actors, comment_id=comment_ids, data=st.data())
    def delete_comment(self, run_id, actor, comment_id, data):
        self._delete_comment(run_id, actor, comment_id, data.draw(user_id_for(actor), label="user_id"))

    def _delete_comment(self, run_id, actor, comment_id, user_id):
        world = World()
        run = world.run(run_id)
        expected = self._comment_change_expectation(world, run, actor, comment_id, user_id, False)

        def check(old, new, events):
            assert [(e["type"], e["payload"]) for e in events] == [
                ("COMMENT_DELETED", {"user_comment_id": comment_id, "user_id": user_id})
            ]

        self._call(
            "delete_comment",
            expected,
            lambda: services.delete_comment(run_id=run_id, user_comment_id=comment_id, user_id=user_id, actor=actor),
            run=run,
            on_success=check,
        )

    # --- well-formed calls by someone entitled to make them ----------------------------------

    @rule(run_id=runs, data=st.data(),
          op=st.sampled_from(["complete", "complete", "save", "claim", "release", "assign", "comment", "edit",
                              "delete", "cancel"]))
    def sensible(self, run_id, op, data):
        """Random arguments rarely line up; this moves runs through every state and comment history.
        The outcome is still predicted and checked like any other call's."""
        world = World()
        run = world.run(run_id)
        owner = PLAIN.get(run["user_id"])
        members = [a for a in PLAIN.values() if run["user_group"] in a.groups]
        actor = data.draw(st.sampled_from([a for a in (owner, owner, *members, ENGINE, ADMIN) if a]), label="actor")
        user_id = actor.name if actor in PLAIN.values() else run["user_id"] or data.draw(st.sampled_from(USERS))
        if op == "complete":
            strategy = data.draw(st.sampled_from([None, "FAIL_ON_MISMATCHED_USER_ID"]), label="strategy")
            self._complete(run_id, actor, user_id, data.draw(st.sampled_from(VALID_RESULTS[run["user_task_def_name"]])), strategy)
        elif op == "save":
            self._save(run_id, actor, user_id, data.draw(st.sampled_from(VALID_RESULTS[run["user_task_def_name"]])), None)
        elif op == "claim":
            self.claim(run_id, actor)
        elif op == "release":
            self.release(run_id, actor)
        elif op == "assign":
            self._assign(run_id, data.draw(st.sampled_from([ENGINE, ADMIN])), *data.draw(good_owner), True)
        elif op == "comment":
            self._add_comment(run_id, actor, user_id, "Looks good")
        elif op == "cancel":
            self.cancel(run_id, ENGINE, None)
        else:
            added = [e["payload"] for e in world.events_of(run["pk"]) if e["type"] == "COMMENT_ADDED"]
            if not added:
                return self._add_comment(run_id, actor, user_id, "First!")
            payload = data.draw(st.sampled_from(added), label="comment")
            author = PLAIN.get(payload["user_id"]) or data.draw(st.sampled_from([ENGINE, ADMIN]))
            if op == "edit":
                self._edit_comment(run_id, author, payload["user_comment_id"], payload["user_id"], "Edited")
            else:
                self._delete_comment(run_id, author, payload["user_comment_id"], payload["user_id"])

    # --- ids that are malformed or point nowhere ---------------------------------------------

    @rule(bad_id=st.sampled_from(BAD_RUN_IDS), actor=actors,
          op=st.sampled_from(["assign", "claim", "release", "complete", "save", "cancel", "comment", "edit", "delete"]))
    def unknown_run(self, bad_id, actor, op):
        calls = {
            "assign": lambda: services.assign_user_task_run(run_id=bad_id, user_id="obiwan", actor=actor),
            "claim": lambda: services.claim_user_task_run(run_id=bad_id, actor=actor),
            "release": lambda: services.release_user_task_run(run_id=bad_id, actor=actor),
            "complete": lambda: services.complete_user_task_run(
                run_id=bad_id, user_id=actor.name, results={"requestedItem": "x"}, actor=actor
            ),
            "save": lambda: services.save_user_task_run_progress(run_id=bad_id, user_id=actor.name, results={}, actor=actor),
            "cancel": lambda: services.cancel_user_task_run(run_id=bad_id, actor=actor),
            "comment": lambda: services.add_comment(run_id=bad_id, user_id=actor.name, comment="hi", actor=actor),
            "edit": lambda: services.edit_comment(
                run_id=bad_id, user_comment_id=1, user_id=actor.name, comment="hi", actor=actor
            ),
            "delete": lambda: services.delete_comment(run_id=bad_id, user_comment_id=1, user_id=actor.name, actor=actor),
        }
        self._call(f"{op} on {bad_id!r}", NF if well_formed_id(bad_id) else IA, calls[op])

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def every_run_keeps_the_design_invariants(self):
        world = World()
        for pk, run in world.runs.items():
            status, user_id, user_group = run["status"], run["user_id"], run["user_group"]
            assert status in ("UNASSIGNED", "ASSIGNED", "DONE", "CANCELLED")
            assert user_id is not None or user_group is not None, "owner and group both null"
            if status in OPEN:
                assert (status == "ASSIGNED") == (user_id is not None), "ASSIGNED ⇔ user_id set"
            if status == "UNASSIGNED":
                assert user_group is not None and user_id is None
            assert user_id != "" and user_group != ""
            assert (status == "DONE") == (run["output"] is not None)
            assert (status == "CANCELLED") == (run["failure"] is not None)

            # Final statuses are final.
            if pk in self.final_status:
                assert status == self.final_status[pk], f"a {self.final_status[pk]} run became {status}"
            elif status in FINAL:
                self.final_status[pk] = status

            events = world.events_of(pk)
            # The log is append-only.
            log = [(e["pk"], e["type"], e["actor"], e["payload"], e["time"]) for e in events]
            seen = self.seen_events.get(pk, [])
            assert log[: len(seen)] == seen, "events were rewritten or deleted"
            self.seen_events[pk] = log

            assert run["epoch"] == sum(1 for e in events if e["type"] == "ASSIGNED")
            self._replay(run, events)

    def _replay(self, run, events):
        """Replaying the log reproduces the run: owner, group, status, results, comments."""
        assert events and events[0]["type"] == "ASSIGNED"
        assert (events[0]["payload"]["old_user_id"], events[0]["payload"]["old_user_group"]) == (None, None)
        owner, group, status, saved, completed_by = None, None, None, {}, None
        comment_ids, deleted = [], set()
        for event in events:
            kind, payload = event["type"], event["payload"]
            if kind in ("ASSIGNED", "SAVED", "COMPLETED", "CANCELLED"):
                assert status not in FINAL, f"{kind} after {status}"
            if kind == "ASSIGNED":
                assert (payload["old_user_id"], payload["old_user_group"]) == (owner, group), "broken ASSIGNED chain"
                owner, group = payload["new_user_id"], payload["new_user_group"]
                status = "ASSIGNED" if owner is not None else "UNASSIGNED"
            elif kind == "COMPLETED":
                assert payload["user_id"] == owner, "completed by someone who did not hold the run"
                status, completed_by = "DONE", payload["user_id"]
            elif kind == "CANCELLED":
                status = "CANCELLED"
                assert run["failure"]["message"] == payload["message"]
            elif kind == "SAVED":
                saved = payload["results"]
            elif kind == "COMMENT_ADDED":
                comment_ids.append(payload["user_comment_id"])
            elif kind in ("COMMENT_EDITED", "COMMENT_DELETED"):
                assert payload["user_comment_id"] in comment_ids and payload["user_comment_id"] not in deleted
                if kind == "COMMENT_DELETED":
                    deleted.add(payload["user_comment_id"])
        assert (run["user_id"], run["user_group"], run["status"]) == (owner, group, status), "the log disagrees"
        assert comment_ids == list(range(1, len(comment_ids) + 1)), "comment ids are not 1, 2, 3…"
        if status == "DONE":
            assert run["output"] == run["results"] and completed_by == run["user_id"]
        else:
            assert run["results"] == saved, "results are not the last saved draft"


MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.django_db
def test_random_operation_sequences_keep_every_invariant(it_request, funds_def):
    OUTCOMES.clear()
    run_state_machine_as_test(UserTaskRunMachine, settings=MACHINE_SETTINGS)
    # The machine really exercised the services: calls went through and every error code came up
    # (Hypothesis switches rules off at random per example, so only coarse totals are stable).
    codes = Counter(outcome for (_op, outcome) in OUTCOMES.elements())
    assert codes["OK"] - OUTCOMES[("start", "OK")] >= 10, OUTCOMES
    assert all(codes[code] for code in ("InvalidArgument", "NotFound", "PermissionDenied", "FailedPrecondition")), codes
