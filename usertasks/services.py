"""Every state change of the domain (DESIGN §3). Views, the API, the admin, commands and timers
all call these functions; nothing else writes UserTaskDef, WfRun, UserTaskRun or UserTaskEvent.

Each operation runs in one transaction, locks the run row before deciding anything, raises a
typed error before writing anything, and appends its event(s) in the same transaction. Checks
follow DESIGN §3's order: malformed arguments, existence/visibility, permission, state, results.
"""

import json
import re
import uuid
from typing import Any, Iterable

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save

from .actors import PERM_PUT_DEF, PERM_START_RUN, Actor
from .exceptions import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from .models import UserTaskDef, UserTaskEvent, UserTaskField, UserTaskRun, UserTaskRunId, WfRun
from .variables import TYPES, validate_results
from . import hooks, notifications
from .models import Notification

Status = UserTaskRun.Status
Kind = UserTaskEvent.Kind

DEF_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,126}[a-z0-9])?\Z")
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
WF_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")
FIELD_KEYS = {"name", "display_name", "description", "type", "required"}

COMPLETE_STRATEGIES = ("ASSIGN_TO_NEW_USER", "FAIL_ON_MISMATCHED_USER_ID")
SAVE_POLICIES = ("FAIL_IF_CLAIMED_BY_OTHER", "IGNORE_CLAIM")
ACTION_TYPES = ("REMINDER", "CANCEL", "REASSIGN")
ACTION_HOOKS = ("ON_ARRIVAL", "ON_TASK_ASSIGNED")
ACTION_KEYS = {"type", "delay_seconds", "hook", "user_id", "user_group"}
DEFAULT_CANCEL_MESSAGE = "UserTaskRun was cancelled"
MAX_TEXT = 10_000


# --- argument checks (step 1: malformed on their own) -----------------------------------------


def _identity(value: Any, what: str, *, optional: bool) -> str | None:
    """A user_id or user_group: absent (None) where optional, else a non-blank string."""
    if value is None:
        if optional:
            return None
        raise InvalidArgument(f"{what} is required")
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string")
    if not value.strip():
        raise InvalidArgument(f"{what} must not be blank")
    if len(value) > 256:
        raise InvalidArgument(f"{what} must be at most 256 characters")
    return value


def _choice(value: Any, what: str, choices: Iterable[str], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise InvalidArgument(f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _text(value: Any, what: str, *, max_length: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string")
    if len(value) > max_length:
        raise InvalidArgument(f"{what} must be at most {max_length} characters")
    return value


def _run_key(run_id: Any) -> UserTaskRunId:
    try:
        wf_run_id, guid = run_id
    except (TypeError, ValueError):
        raise InvalidArgument("a UserTaskRun id is a pair (wf_run_id, user_task_guid)") from None
    if not isinstance(wf_run_id, str) or not wf_run_id.strip():
        raise InvalidArgument("wf_run_id must not be blank")
    if not isinstance(guid, str) or not guid.strip():
        raise InvalidArgument("user_task_guid must not be blank")
    return UserTaskRunId(wf_run_id, guid)


def clean_actions(actions: Any) -> list[dict]:
    """Validate timed hooks (DESIGN §5) and return them in canonical form."""
    if actions is None:
        return []
    if not isinstance(actions, list):
        raise InvalidArgument("actions must be a list")
    cleaned = []
    for i, action in enumerate(actions):
        where = f"actions[{i}]"
        if not isinstance(action, dict):
            raise InvalidArgument(f"{where} must be an object")
        unknown = set(action) - ACTION_KEYS
        if unknown:
            raise InvalidArgument(f"{where} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
        kind = _choice(action.get("type"), f"{where}.type", ACTION_TYPES, default="")
        if not kind:
            raise InvalidArgument(f"{where}.type is required")
        hook = _choice(action.get("hook"), f"{where}.hook", ACTION_HOOKS, default="ON_ARRIVAL")
        delay = action.get("delay_seconds")
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
            raise InvalidArgument(f"{where}.delay_seconds must be an integer ≥ 0")
        item = {"type": kind, "hook": hook, "delay_seconds": delay}
        user_id = _identity(action.get("user_id"), f"{where}.user_id", optional=True)
        user_group = _identity(action.get("user_group"), f"{where}.user_group", optional=True)
        if kind == "REASSIGN":
            if user_id is None and user_group is None:
                raise InvalidArgument(f"{where}: REASSIGN needs a user_id or a user_group")
            item.update(user_id=user_id, user_group=user_group)
        elif user_id is not None or user_group is not None:
            raise InvalidArgument(f"{where}: only REASSIGN takes a user_id or user_group")
        cleaned.append(item)
    return cleaned


def clean_def_name(name: Any) -> str:
    """A UserTaskDef name as put_user_task_def accepts it, else InvalidArgument (the admin form
    checks with this before the service is called)."""
    if not isinstance(name, str) or not DEF_NAME_RE.match(name):
        raise InvalidArgument(
            "name must be lowercase letters, digits and hyphens, not starting or ending with a hyphen, ≤ 128 chars"
        )
    return name


def clean_def_fields(fields: Any) -> list[dict]:
    """A def's fields in canonical form as put_user_task_def stores them, else InvalidArgument."""
    if fields is None:
        return []
    if not isinstance(fields, list):
        raise InvalidArgument("fields must be a list")
    cleaned, seen = [], set()
    for i, raw in enumerate(fields):
        where = f"fields[{i}]"
        if not isinstance(raw, dict):
            raise InvalidArgument(f"{where} must be an object")
        unknown = set(raw) - FIELD_KEYS
        if unknown:
            raise InvalidArgument(f"{where} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
        name = raw.get("name")
        if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
            raise InvalidArgument(
                f"{where}.name must be an identifier (a letter or _, then letters, digits or _; ≤ 128 chars)"
            )
        if name in seen:
            raise InvalidArgument(f"field {name!r} appears more than once")
        seen.add(name)
        ftype = raw.get("type")
        if ftype not in TYPES:
            raise InvalidArgument(f"{where}.type must be one of {', '.join(TYPES)}; got {ftype!r}")
        required = raw.get("required", False)
        if not isinstance(required, bool):
            raise InvalidArgument(f"{where}.required must be true or false")
        cleaned.append(
            {
                "name": name,
                "display_name": _text(raw.get("display_name"), f"{where}.display_name", max_length=256),
                "description": _text(raw.get("description"), f"{where}.description"),
                "type": ftype,
                "required": required,
            }
        )
    return cleaned


# --- definitions --------------------------------------------------------------------------------


def _def_signature(description: str, fields: list[dict], default_actions: list[dict]) -> tuple:
    # Keys sorted: PostgreSQL's jsonb does not keep the order in which the actions were written.
    return (description, tuple(tuple(sorted(f.items())) for f in fields), json.dumps(default_actions, sort_keys=True))


def _existing_signature(udef: UserTaskDef) -> tuple:
    fields = [
        {k: getattr(f, k) for k in ("name", "display_name", "description", "type", "required")}
        for f in udef.fields.all()
    ]
    return _def_signature(udef.description, fields, udef.default_actions)


def put_user_task_def(
    *,
    name: Any,
    fields: Any,
    actor: Actor,
    description: Any = None,
    default_actions: Any = None,
) -> tuple[UserTaskDef, bool]:
    """Create a new version of a UserTaskDef, or return the latest one if identical.

    Returns (def, created). Raises InvalidArgument (bad name, field, type, duplicate field) and
    PermissionDenied (needs act_for_others or the add_usertaskdef permission).
    """
    name = clean_def_name(name)
    description = _text(description, "description")
    cleaned_fields = clean_def_fields(fields)
    cleaned_actions = clean_actions(default_actions)
    if not (actor.acts_for_others or actor.has(PERM_PUT_DEF)):
        raise PermissionDenied(f"{actor.name} may not define user task types")
    wanted = _def_signature(description, cleaned_fields, cleaned_actions)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                _lock_def_name(name)
                latest = UserTaskDef.objects.filter(name=name).prefetch_related("fields").order_by("-version").first()
                if latest is not None and _existing_signature(latest) == wanted:
                    return latest, False
                udef = UserTaskDef.objects.create(
                    name=name,
                    version=0 if latest is None else latest.version + 1,
                    description=description,
                    default_actions=cleaned_actions,
                )
                UserTaskField.objects.bulk_create(
                    UserTaskField(user_task_def=udef, position=i, **f) for i, f in enumerate(cleaned_fields)
                )
                return udef, True
        except IntegrityError:
            continue  # another writer took this version number at the same moment: look again
    raise FailedPrecondition(f"UserTaskDef {name} is being changed concurrently; try again")


def _lock_def_name(name: str) -> None:
    """Queue writers of one def name until commit, so that concurrent puts do not collide on the
    next version number (PostgreSQL; SQLite's immediate transactions already serialise writers)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"usertaskdef:{name}"])


def get_user_task_def(name: str, version: int | None = None) -> UserTaskDef:
    """The exact version, or the latest one; raises NotFound."""
    qs = UserTaskDef.objects.filter(name=name).prefetch_related("fields")
    udef = qs.filter(version=version).first() if version is not None else qs.order_by("-version").first()
    if udef is None:
        at = f" version {version}" if version is not None else ""
        raise NotFound(f"UserTaskDef {name}{at} not found")
    return udef


# --- runs ---------------------------------------------------------------------------------------


def _record(run: UserTaskRun, kind: str, *, actor: Actor, **payload) -> UserTaskEvent:
    return UserTaskEvent.objects.create(user_task_run=run, type=kind, actor=actor.name, payload=payload)


def _locked(run_id: Any, actor: Actor) -> UserTaskRun:
    """The run, row-locked for the rest of the transaction; NotFound if absent or not visible.
    Its def and WfRun come with it (unlocked): hooks.notify_workflow reads the callback_url."""
    key = _run_key(run_id)
    rows = list(
        UserTaskRun.objects.select_for_update(of=("self",))
        .select_related("user_task_def", "wf_run")
        .filter(wf_run_id=key.wf_run_id, user_task_guid=key.user_task_guid)
        .order_by()[:1]  # the pair is unique: no ORDER BY needed
    )
    run = rows[0] if rows else None
    if run is None or not actor.can_see(run):
        raise NotFound(f"UserTaskRun {key.wf_run_id}/{key.user_task_guid} not found")
    return run


# A def version's fields never change once put (DESIGN §2: a change is a new version), so each
# process keeps them per version after the first read. An entry is used only while the def row
# still has the same name, version and created_at (test databases reuse ids), and saving or
# deleting a def or a field in this process drops the entries (signals at the end of the module).
_def_fields_cache: dict[tuple[str, int], tuple[tuple, tuple[UserTaskField, ...]]] = {}
DEF_FIELDS_CACHE_MAX = 1000


def _def_fields(udef: UserTaskDef) -> tuple[UserTaskField, ...]:
    """The def's fields in order, read once per process and version."""
    key, identity = (udef._state.db, udef.pk), (udef.name, udef.version, udef.created_at)
    cached = _def_fields_cache.get(key)
    if cached is not None and cached[0] == identity:
        return cached[1]
    fields = tuple(udef.fields.all())
    if len(_def_fields_cache) >= DEF_FIELDS_CACHE_MAX:
        _def_fields_cache.clear()
    _def_fields_cache[key] = (identity, fields)
    return fields


def _forget_def_fields(sender, instance, using, **kwargs) -> None:
    _def_fields_cache.pop((using, instance.pk if sender is UserTaskDef else instance.user_task_def_id), None)


def _require_open(run: UserTaskRun, doing: str) -> None:
    if run.is_final:
        raise FailedPrecondition(f"UserTaskRun is already {run.status} and cannot be {doing}")


def _require_self(actor: Actor, user_id: str) -> None:
    """Step 3 for a plain user: they act only as themselves (DESIGN §4)."""
    if user_id != actor.name and not actor.acts_for_others:
        raise PermissionDenied(f"{actor.name} may act only as themselves, not as {user_id}")


def _assign(run: UserTaskRun, *, user_id: str | None, user_group: str | None, actor: Actor) -> None:
    """Set both owner fields (an omitted one is cleared), bump the epoch and record it."""
    old_user_id, old_user_group = run.user_id, run.user_group
    run.user_id, run.user_group = user_id, user_group
    run.status = Status.ASSIGNED if user_id is not None else Status.UNASSIGNED
    run.epoch += 1
    run.save(update_fields=["user_id", "user_group", "status", "epoch", "updated_at"])
    _record(
        run,
        Kind.ASSIGNED,
        actor=actor,
        old_user_id=old_user_id,
        old_user_group=old_user_group,
        new_user_id=user_id,
        new_user_group=user_group,
    )
    if user_id is not None:
        # The epoch bump makes earlier ON_TASK_ASSIGNED timers stale; these replace them.
        hooks.schedule_actions(run, on=(hooks.ON_TASK_ASSIGNED,))


@transaction.atomic
def start_user_task_run(
    *,
    user_task_def_name: Any,
    actor: Actor,
    user_task_def_version: Any = None,
    wf_run_id: Any = None,
    user_id: Any = None,
    user_group: Any = None,
    notes: Any = None,
    on_cancellation_exception_name: Any = None,
    actions: Any = None,
    callback_url: Any = None,
) -> UserTaskRun:
    """Create a UserTaskRun for the def (latest version unless one is given) and assign it.

    The first event is always ASSIGNED (old values null); epoch is 1. Raises InvalidArgument,
    NotFound (def), PermissionDenied (needs act_for_others or add_usertaskrun).
    """
    if not isinstance(user_task_def_name, str) or not user_task_def_name.strip():
        raise InvalidArgument("user_task_def_name is required")
    if user_task_def_version is not None and (
        not isinstance(user_task_def_version, int) or isinstance(user_task_def_version, bool) or user_task_def_version < 0
    ):
        raise InvalidArgument("user_task_def_version must be an integer ≥ 0")
    user_id = _identity(user_id, "user_id", optional=True)
    user_group = _identity(user_group, "user_group", optional=True)
    if user_id is None and user_group is None:
        raise InvalidArgument("a UserTaskRun needs a user_id or a user_group (or both)")
    if wf_run_id is not None and (not isinstance(wf_run_id, str) or not WF_RUN_ID_RE.match(wf_run_id)):
        raise InvalidArgument("wf_run_id must be 1–128 characters of letters, digits, '-' and '_'")
    notes = _text(notes, "notes")
    if on_cancellation_exception_name is not None:
        on_cancellation_exception_name = _identity(on_cancellation_exception_name, "on_cancellation_exception_name", optional=False)
        if len(on_cancellation_exception_name) > 128:
            raise InvalidArgument("on_cancellation_exception_name must be at most 128 characters")
    cleaned_actions = clean_actions(actions)
    callback_url = _clean_callback_url(callback_url)
    udef = get_user_task_def(user_task_def_name, user_task_def_version)
    if not (actor.acts_for_others or actor.has(PERM_START_RUN)):
        raise PermissionDenied(f"{actor.name} may not start user task runs")

    wf_run = _wf_run_for(wf_run_id or uuid.uuid4().hex, callback_url)
    run = UserTaskRun.objects.create(
        wf_run=wf_run,
        user_task_guid=uuid.uuid4().hex,
        user_task_def=udef,
        user_task_def_name=udef.name,
        status=Status.ASSIGNED if user_id is not None else Status.UNASSIGNED,
        user_id=user_id,
        user_group=user_group,
        notes=notes,
        epoch=1,
        on_cancellation_exception_name=on_cancellation_exception_name,
        actions=list(udef.default_actions) + cleaned_actions,
    )
    _record(
        run,
        Kind.ASSIGNED,
        actor=actor,
        old_user_id=None,
        old_user_group=None,
        new_user_id=user_id,
        new_user_group=user_group,
    )
    hooks.schedule_actions(run, on=(hooks.ON_ARRIVAL, hooks.ON_TASK_ASSIGNED) if user_id else (hooks.ON_ARRIVAL,))
    return run


def _clean_callback_url(url: Any) -> str | None:
    if url is None:
        return None
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+\S*\Z", url) or len(url) > 2000:
        raise InvalidArgument("callback_url must be an http:// or https:// URL of at most 2000 characters")
    return url


def _wf_run_for(wf_run_id: str, callback_url: str | None) -> WfRun:
    """The WfRun, created by its first run; a later run may repeat or omit its callback_url."""
    wf_run = WfRun.objects.filter(pk=wf_run_id).first()
    if wf_run is None:
        try:
            with transaction.atomic():
                return WfRun.objects.create(id=wf_run_id, callback_url=callback_url or "")
        except IntegrityError:
            wf_run = WfRun.objects.get(pk=wf_run_id)
    if callback_url is not None and callback_url != wf_run.callback_url:
        raise InvalidArgument(f"WfRun {wf_run_id} already has a different callback_url")
    return wf_run


@transaction.atomic
def assign_user_task_run(
    *,
    run_id: Any,
    actor: Actor,
    user_id: Any = None,
    user_group: Any = None,
    override_claim: Any = False,
) -> UserTaskRun:
    """Set user_id and user_group to the given values (an omitted one is cleared); epoch + 1.

    Without override_claim a run that has a user_id is refused (FailedPrecondition). A plain
    user may only claim (user_id = themselves, group unchanged, a group of theirs) or release
    their own run; anything else needs the assign permission (PermissionDenied).
    """
    user_id = _identity(user_id, "user_id", optional=True)
    user_group = _identity(user_group, "user_group", optional=True)
    if user_id is None and user_group is None:
        raise InvalidArgument("give a user_id or a user_group (or both) to assign to")
    if not isinstance(override_claim, bool):
        raise InvalidArgument("override_claim must be true or false")
    run = _locked(run_id, actor)
    if not actor.can_assign:
        is_claim = user_id == actor.name and user_group == run.user_group and run.user_group in actor.groups
        is_release = user_id is None and user_group == run.user_group and run.user_id == actor.name
        if not (is_claim or is_release):
            raise PermissionDenied(
                f"{actor.name} may only claim runs of their groups or release their own; "
                "reassigning needs the assign permission"
            )
        if is_claim and override_claim and run.user_id not in (None, actor.name):
            # §7: a member claims only UNASSIGNED runs; taking another user's run is a reassignment.
            raise PermissionDenied(
                f"{actor.name} may not take a run held by {run.user_id}: override_claim needs the assign permission"
            )
        override_claim = override_claim or is_release
    _require_open(run, "reassigned")
    if run.user_id is not None and not override_claim:
        raise FailedPrecondition(f"UserTaskRun is already assigned to {run.user_id}; pass override_claim to reassign it")
    _assign(run, user_id=user_id, user_group=user_group, actor=actor)
    return run


@transaction.atomic
def claim_user_task_run(*, run_id: Any, actor: Actor) -> UserTaskRun:
    """The acting user takes an UNASSIGNED run of one of their groups; the group is kept."""
    run = _locked(run_id, actor)
    if not actor.can_assign and run.user_group not in actor.groups:
        raise PermissionDenied(f"{actor.name} is not in group {run.user_group} and cannot claim this run")
    _require_open(run, "claimed")
    if run.user_id is not None:
        raise FailedPrecondition(f"UserTaskRun is already assigned to {run.user_id}")
    _assign(run, user_id=actor.name, user_group=run.user_group, actor=actor)
    return run


@transaction.atomic
def release_user_task_run(*, run_id: Any, actor: Actor) -> UserTaskRun:
    """The owner (or an admin) hands an ASSIGNED run back to its group, UNASSIGNED."""
    run = _locked(run_id, actor)
    if not actor.can_assign and run.user_id != actor.name:
        raise PermissionDenied("only the user who holds this run, or an admin, may release it")
    _require_open(run, "released")
    if run.user_id is None:
        raise FailedPrecondition("UserTaskRun is not assigned to anyone")
    if run.user_group is None:
        raise FailedPrecondition("UserTaskRun has no group to be released to")
    _assign(run, user_id=None, user_group=run.user_group, actor=actor)
    return run


def _require_may_work_on(run: UserTaskRun, actor: Actor, user_id: str) -> None:
    """Step 3 of complete/save for a plain user: their own run, or an unassigned one of their group."""
    _require_self(actor, user_id)
    if actor.acts_for_others:
        return
    if run.user_id is not None and run.user_id != actor.name:
        raise PermissionDenied(f"UserTaskRun is assigned to {run.user_id}; only they or an admin may work on it")
    if run.user_id is None and run.user_group not in actor.groups:
        raise PermissionDenied(f"{actor.name} is not in group {run.user_group}")


@transaction.atomic
def complete_user_task_run(
    *,
    run_id: Any,
    user_id: Any,
    results: Any,
    actor: Actor,
    strategy: Any = None,
) -> UserTaskRun:
    """Complete the run with validated results: status DONE, output = results, COMPLETED event.

    Strategy ASSIGN_TO_NEW_USER (default): a different user_id first reassigns the run to that
    user (ASSIGNED event, group kept). FAIL_ON_MISMATCHED_USER_ID: a run held by another user is
    refused. Raises InvalidArgument (blank user_id; results listing every bad field), NotFound,
    PermissionDenied, FailedPrecondition (DONE/CANCELLED, mismatched user).
    """
    user_id = _identity(user_id, "user_id", optional=False)
    strategy = _choice(strategy, "strategy", COMPLETE_STRATEGIES, "ASSIGN_TO_NEW_USER")
    if not isinstance(results, dict):
        raise InvalidArgument("results must be a JSON object mapping field names to values")
    run = _locked(run_id, actor)
    _require_may_work_on(run, actor, user_id)
    _require_open(run, "completed")
    if run.user_id is not None and run.user_id != user_id and strategy == "FAIL_ON_MISMATCHED_USER_ID":
        raise FailedPrecondition(f"UserTaskRun is assigned to {run.user_id}, not {user_id}")
    clean = validate_results(_def_fields(run.user_task_def), results, require_all=True)
    if run.user_id != user_id:
        _assign(run, user_id=user_id, user_group=run.user_group, actor=actor)
    run.status = Status.DONE
    run.results = clean
    run.output = clean
    run.save(update_fields=["status", "results", "output", "updated_at"])
    _record(run, Kind.COMPLETED, actor=actor, user_id=user_id)
    hooks.notify_workflow(run, hooks.EVENT_DONE)
    return run


@transaction.atomic
def save_user_task_run_progress(
    *,
    run_id: Any,
    user_id: Any,
    results: Any,
    actor: Actor,
    policy: Any = None,
) -> UserTaskRun:
    """Replace the draft results (types checked, required not enforced); SAVED event.

    Ownership never changes. Policy FAIL_IF_CLAIMED_BY_OTHER (default) refuses a run held by
    another user_id; IGNORE_CLAIM skips that check.
    """
    user_id = _identity(user_id, "user_id", optional=False)
    policy = _choice(policy, "policy", SAVE_POLICIES, "FAIL_IF_CLAIMED_BY_OTHER")
    if not isinstance(results, dict):
        raise InvalidArgument("results must be a JSON object mapping field names to values")
    run = _locked(run_id, actor)
    _require_may_work_on(run, actor, user_id)
    _require_open(run, "saved")
    if policy == "FAIL_IF_CLAIMED_BY_OTHER" and run.user_id is not None and run.user_id != user_id:
        raise FailedPrecondition(f"UserTaskRun is claimed by {run.user_id}; pass policy IGNORE_CLAIM to save anyway")
    clean = validate_results(_def_fields(run.user_task_def), results, require_all=False)
    run.results = clean
    run.save(update_fields=["results", "updated_at"])
    _record(run, Kind.SAVED, actor=actor, user_id=user_id, results=clean)
    return run


def cancellation_failure(run: UserTaskRun, message: str) -> dict:
    """What the workflow sees when the run is cancelled (DESIGN §6)."""
    if run.on_cancellation_exception_name:
        return {"type": "EXCEPTION", "name": run.on_cancellation_exception_name, "message": message}
    return {"type": "ERROR", "name": "USER_TASK_CANCELLED", "message": message}


@transaction.atomic
def cancel_user_task_run(*, run_id: Any, actor: Actor, message: Any = None) -> UserTaskRun:
    """Cancel an open run: status CANCELLED, failure set, CANCELLED event with the message."""
    message = _text(message, "message")
    if not message.strip():  # blank means the default, as the admin form promises
        message = DEFAULT_CANCEL_MESSAGE
    run = _locked(run_id, actor)
    if not actor.can_cancel:
        raise PermissionDenied(f"{actor.name} may not cancel user task runs")
    _require_open(run, "cancelled")
    run.status = Status.CANCELLED
    run.failure = cancellation_failure(run, message)
    run.save(update_fields=["status", "failure", "updated_at"])
    _record(run, Kind.CANCELLED, actor=actor, message=message)
    hooks.notify_workflow(run, hooks.EVENT_CANCELLED)
    return run


@transaction.atomic
def remind_user_task_run(*, run_id: Any, actor: Actor, action: Any = None) -> list[str]:
    """Remind whoever should act on an open run: its assignee, or every member of its group when
    it is unassigned. Each gets an in-app Notification, and an email (sent after commit) when they
    have an address; a TASK_EXECUTED {action, delivered_to, channels} event records it. Returns
    delivered_to (usernames; an identity with no active Django user cannot be reached).
    Raises NotFound, PermissionDenied (timers act as system; people need the assign permission),
    FailedPrecondition (DONE/CANCELLED).
    """
    run = _locked(run_id, actor)
    if not actor.can_assign:
        raise PermissionDenied(f"{actor.name} may not send reminders")
    _require_open(run, "reminded about")
    User = get_user_model()
    users = User.objects.filter(is_active=True)
    if run.user_id is not None:
        users = users.filter(**{User.USERNAME_FIELD: run.user_id})
    else:
        users = users.filter(groups__name=run.user_group).distinct()
    users = sorted(users, key=lambda u: u.get_username())
    message = notifications.reminder_message(run)
    Notification.objects.bulk_create(Notification(user=u, user_task_run=run, message=message) for u in users)
    emails = [notifications.reminder_email(run, u.get_username(), u.email) for u in users if u.email]
    if emails:
        transaction.on_commit(lambda: notifications.send_emails(emails), robust=True)
    delivered_to = [u.get_username() for u in users]
    channels = (["in_app"] if users else []) + (["email"] if emails else [])
    _touch(run)
    _record(run, Kind.TASK_EXECUTED, actor=actor, action=action, delivered_to=delivered_to, channels=channels)
    return delivered_to


# --- comments -----------------------------------------------------------------------------------


def _comment_text(comment: Any) -> str:
    if not isinstance(comment, str):
        raise InvalidArgument("comment is required")
    if not comment.strip():
        raise InvalidArgument("comment must not be blank")
    return _text(comment, "comment")


def _comment_id(comment_id: Any) -> int:
    if not isinstance(comment_id, int) or isinstance(comment_id, bool) or comment_id < 1:
        raise InvalidArgument("user_comment_id must be a positive integer")
    return comment_id


def _comment_state(run: UserTaskRun, comment_id: int) -> dict:
    """The comment's author and whether it was deleted, from the run's events; NotFound if none."""
    events = UserTaskEvent.objects.filter(
        user_task_run=run,
        type__in=[Kind.COMMENT_ADDED, Kind.COMMENT_DELETED],
        payload__user_comment_id=comment_id,
    ).values_list("type", "payload")
    state = None
    for kind, payload in events:
        if kind == Kind.COMMENT_ADDED:
            state = {"user_id": payload["user_id"], "deleted": False}
        elif state is not None:
            state["deleted"] = True
    if state is None:
        raise NotFound(f"comment {comment_id} not found on this UserTaskRun")
    return state


def _touch(run: UserTaskRun) -> None:
    run.save(update_fields=["updated_at"])


@transaction.atomic
def add_comment(*, run_id: Any, user_id: Any, comment: Any, actor: Actor) -> tuple[UserTaskRun, int]:
    """Add a comment (any status); returns the run and the new comment's id (1, 2, 3… per run)."""
    user_id = _identity(user_id, "user_id", optional=False)
    text = _comment_text(comment)
    run = _locked(run_id, actor)
    _require_self(actor, user_id)
    comment_id = UserTaskEvent.objects.filter(user_task_run=run, type=Kind.COMMENT_ADDED).count() + 1
    _touch(run)
    _record(run, Kind.COMMENT_ADDED, actor=actor, user_comment_id=comment_id, user_id=user_id, comment=text)
    return run, comment_id


def _require_comment_author(state: dict, user_id: str, actor: Actor) -> None:
    _require_self(actor, user_id)
    if state["user_id"] != user_id and not (actor.acts_for_others or actor.is_superuser):
        raise PermissionDenied(f"only {state['user_id']}, who wrote this comment, or an admin may change it")


@transaction.atomic
def edit_comment(*, run_id: Any, user_comment_id: Any, user_id: Any, comment: Any, actor: Actor) -> UserTaskRun:
    """Replace a comment's text; only its author (or act_for_others / an admin)."""
    comment_id = _comment_id(user_comment_id)
    user_id = _identity(user_id, "user_id", optional=False)
    text = _comment_text(comment)
    run = _locked(run_id, actor)
    state = _comment_state(run, comment_id)
    _require_comment_author(state, user_id, actor)
    if state["deleted"]:
        raise FailedPrecondition(f"comment {comment_id} was deleted")
    _touch(run)
    _record(run, Kind.COMMENT_EDITED, actor=actor, user_comment_id=comment_id, user_id=user_id, comment=text)
    return run


@transaction.atomic
def delete_comment(*, run_id: Any, user_comment_id: Any, user_id: Any, actor: Actor) -> UserTaskRun:
    """Delete a comment logically; its history stays in the events."""
    comment_id = _comment_id(user_comment_id)
    user_id = _identity(user_id, "user_id", optional=False)
    run = _locked(run_id, actor)
    state = _comment_state(run, comment_id)
    _require_comment_author(state, user_id, actor)
    if state["deleted"]:
        raise FailedPrecondition(f"comment {comment_id} was already deleted")
    _touch(run)
    _record(run, Kind.COMMENT_DELETED, actor=actor, user_comment_id=comment_id, user_id=user_id)
    return run


for _model in (UserTaskDef, UserTaskField):
    post_save.connect(_forget_def_fields, sender=_model, dispatch_uid=f"def-fields-save-{_model.__name__}")
    post_delete.connect(_forget_def_fields, sender=_model, dispatch_uid=f"def-fields-delete-{_model.__name__}")
