"""The JSON API of DESIGN §4 (django-ninja), mounted at /api/; the operations live under /api/v1/.

Each endpoint parses its input (pydantic schemas: strict types, unknown keys refused), calls one
service or selector with the token's Actor, and serializes the result. Every rule — who may
do what, which runs exist for whom — lives in services.py, selectors.py and actors.py.

Every response under /api/ is JSON; errors are always {"code": ..., "message": ...}:
INVALID_ARGUMENT 400 (also malformed JSON, wrong content type, schema violations — never 422),
UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404 (also unknown paths),
METHOD_NOT_ALLOWED 405, FAILED_PRECONDITION 409.
"""

import functools
import json
import logging
import time
from typing import Annotated, Any, Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import RequestDataTooBig
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import re_path
from ninja import Field, NinjaAPI, Path, Query, Router, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import BaseModel, ConfigDict

from . import selectors, services
from .actors import Actor
from .exceptions import InvalidArgument, UserTaskError
from .models import ApiToken, UserTaskEvent, UserTaskRun
from .variables import TYPES

logger = logging.getLogger(__name__)

MAX_INT = 2**31 - 1  # versions, comment ids and delays: beyond this they are typos, not values

RunStatus = Literal[tuple(UserTaskRun.Status.values)]
FieldType = Literal[tuple(TYPES)]
EventType = Literal[tuple(UserTaskEvent.Kind.values)]
Strategy = Literal[services.COMPLETE_STRATEGIES]
Policy = Literal[services.SAVE_POLICIES]
ActionType = Literal[services.ACTION_TYPES]
ActionHook = Literal[services.ACTION_HOOKS]
# Times go out exactly as stored (microseconds, offset), not re-rounded by a JSON encoder.
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


# --- errors -------------------------------------------------------------------------------------

HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "FAILED_PRECONDITION",
}


def error_response(status: int, message: str, code: str | None = None) -> JsonResponse:
    response = JsonResponse({"code": code or HTTP_CODES.get(status, "INTERNAL"), "message": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="taskmanager"'
    return response


def _bad_text(value: Any) -> bool:
    """True for a string PostgreSQL cannot store: a NUL character or a lone surrogate."""
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_json_strings(data: Any) -> None:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _bad_text(item):
                raise InvalidArgument("strings must not contain NUL characters or unpaired surrogates")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class JSONParser(Parser):
    """Request bodies are JSON objects sent as application/json; anything else is INVALID_ARGUMENT."""

    def parse_body(self, request: HttpRequest) -> dict:
        if request.content_type != "application/json":
            raise InvalidArgument(
                f"send the request body as JSON with 'Content-Type: application/json', not {request.content_type or 'no content type'!r}"
            )
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError) as exc:
            raise InvalidArgument(f"the request body is not valid JSON: {exc}") from None
        _check_json_strings(data)
        return data


def _loc(loc: tuple) -> str:
    """('body', 'payload', 'fields', 0, 'type') -> 'fields[0].type'; ('query', 'limit') -> 'limit'."""
    parts = list(loc[2:] if loc and loc[0] == "body" else loc[1:])
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("function-after", "literal", "str", "int", "bool", "list", "dict", "none"):
            continue  # pydantic's union/type tags, noise to a client
        else:
            text += f".{part}" if text else str(part)
    return text


def _validation_message(errors: list[dict]) -> str:
    problems = []
    for error in errors:
        where = _loc(tuple(error.get("loc", ())))
        if error.get("type") == "missing" and not where and error.get("loc", ("",))[0] == "body":
            problems.append("a JSON object request body is required")
            continue
        if not where and error.get("type") in ("model_attributes_type", "dict_type", "model_type"):
            problems.append("the request body must be a JSON object")
            continue
        if error.get("type") == "extra_forbidden":
            what = "unknown key (not part of this request)"
        elif error.get("type") == "missing":
            what = "is required"
        else:
            what = error.get("msg", "is invalid")
        problems.append(f"{where}: {what}" if where else what)
    unique = list(dict.fromkeys(problems))
    return "invalid request: " + "; ".join(unique[:10]) + (f"; and {len(unique) - 10} more" if len(unique) > 10 else "")


class TaskmanagerAPI(NinjaAPI):
    """NinjaAPI whose every response under /api/ is JSON: unknown paths, wrong methods and
    strings PostgreSQL cannot store are answered here, before or around ninja's own views."""

    def _get_urls(self) -> list:
        patterns = super()._get_urls()
        for pattern in patterns:
            pattern.callback = _json_only(pattern.callback)
        patterns.append(re_path(r"", _unknown_path, name="unknown-path"))
        return patterns


def _json_only(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if _bad_text(request.path) or any(_bad_text(k) or _bad_text(v) for k, vs in request.GET.lists() for v in [k, *vs]):
            return error_response(400, "the URL must not contain NUL characters")
        try:
            response = view(request, *args, **kwargs)
        except Http404:  # ninja's own /api/ root view
            return _unknown_path(request)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            fixed = error_response(405, f"{request.method} is not allowed on {request.path}; use {allowed}")
            fixed["Allow"] = allowed
            return fixed
        return response

    wrapper.csrf_exempt = True
    return wrapper


def _unknown_path(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return error_response(404, f"no such API endpoint: {request.path} (see /api/docs)")


_unknown_path.csrf_exempt = True


# The actor of a token, kept per process for ACTOR_CACHE_SECONDS: a request then costs one query
# (the token joined to its user, in ApiToken.authenticate) instead of four. That query runs on
# every request, so a revoked token, a deactivated user and a changed username or superuser flag
# take effect at once; a change of the user's groups or permissions made in this process (admin,
# commands, tests) clears the cache through signals, one made in another process takes effect
# within ACTOR_CACHE_SECONDS.
ACTOR_CACHE_SECONDS = 30
ACTOR_CACHE_MAX = 1000
_actor_cache: dict[str, tuple[float, int, str, bool, Actor]] = {}


def _clear_actor_cache(**kwargs) -> None:
    _actor_cache.clear()


_User = get_user_model()
for _sender in (_User.groups.through, _User.user_permissions.through, Group.permissions.through):
    m2m_changed.connect(_clear_actor_cache, sender=_sender, dispatch_uid=f"api-actor-cache-{_sender.__name__}")
for _sender in (Group, Permission):
    post_save.connect(_clear_actor_cache, sender=_sender, dispatch_uid=f"api-actor-cache-save-{_sender.__name__}")
    post_delete.connect(_clear_actor_cache, sender=_sender, dispatch_uid=f"api-actor-cache-del-{_sender.__name__}")


def _token_actor(secret: str) -> Actor | None:
    user = ApiToken.authenticate(secret)
    if user is None:
        return None
    key = ApiToken.hash_secret(secret)
    now = time.monotonic()
    cached = _actor_cache.get(key)
    if cached is not None:
        expires, user_pk, username, is_superuser, actor = cached
        if expires > now and (user_pk, username, is_superuser) == (user.pk, user.get_username(), user.is_superuser):
            return actor
    actor = Actor.for_active_user(user)
    if len(_actor_cache) >= ACTOR_CACHE_MAX:
        _actor_cache.clear()
    _actor_cache[key] = (now + ACTOR_CACHE_SECONDS, user.pk, user.get_username(), user.is_superuser, actor)
    return actor


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        return _token_actor(token) if token and not _bad_text(token) else None


api = TaskmanagerAPI(
    title="Taskmanager API",
    version="1",
    description=(
        "User Tasks for workflow engines and task apps (LittleHorse semantics). Authenticate with "
        "`Authorization: Bearer <token>` (create one with `python manage.py create_api_token <username>`). "
        'Errors are `{"code", "message"}`.'
    ),
    urls_namespace="api",
    docs_url="/docs",
    auth=TokenAuth(),
    parser=JSONParser(),
)


@api.exception_handler(UserTaskError)
def _domain_error(request, exc: UserTaskError):
    return error_response(exc.status, exc.message, exc.code)


@api.exception_handler(ValidationError)
def _schema_error(request, exc: ValidationError):
    return error_response(400, _validation_message(exc.errors))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return error_response(401, "a valid API token is required: send 'Authorization: Bearer <token>'")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    cause = exc.__cause__
    if isinstance(cause, UserTaskError):  # raised by JSONParser, wrapped by ninja
        return error_response(cause.status, cause.message, cause.code)
    return error_response(exc.status_code, str(exc))


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error_response(404, f"no such API endpoint: {request.path} (see /api/docs)")


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return error_response(400, "the request body is too large")


@api.exception_handler(Exception)
def _internal(request, exc):
    logger.exception("API error on %s %s", request.method, request.path)
    return error_response(500, "internal error; it has been logged", "INTERNAL")


# --- schemas ------------------------------------------------------------------------------------


class In(Schema):
    """Request bodies: no unknown keys, no type coercion ("1" is not 1, 1 is not true)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    """Responses are built as dicts by selectors (run_as_dict, def_as_dict); plain pydantic
    models keep every key of an event's payload, which ninja's Schema would drop."""


class Error(Out):
    code: str = Field(..., examples=["INVALID_ARGUMENT"])
    message: str


class FieldIn(In):
    name: str = Field(..., description="Identifier, unique in the def: the key of the results.")
    display_name: str | None = None
    description: str | None = None
    type: FieldType
    required: bool = False


class ActionIn(In):
    type: ActionType
    delay_seconds: int = Field(..., ge=0, le=MAX_INT)
    hook: ActionHook = "ON_ARRIVAL"
    user_id: str | None = None
    user_group: str | None = None


class UserTaskDefIn(In):
    name: str = Field(..., description="Lowercase letters, digits and hyphens, ≤ 128 characters.")
    description: str | None = None
    fields: list[FieldIn]
    default_actions: list[ActionIn] | None = Field(None, description="Timed hooks copied onto every new run.")


class StartRunIn(In):
    user_task_def_name: str
    user_task_def_version: int | None = Field(None, ge=0, le=MAX_INT, description="Default: the latest version.")
    wf_run_id: str | None = Field(None, description="Created by its first run; generated when absent.")
    user_id: str | None = None
    user_group: str | None = None
    notes: str | None = None
    on_cancellation_exception_name: str | None = None
    actions: list[ActionIn] | None = None
    callback_url: str | None = None


class CompleteIn(In):
    user_id: str
    results: dict[str, Any]
    strategy: Strategy | None = Field(None, description="Default ASSIGN_TO_NEW_USER.")


class SaveIn(In):
    user_id: str
    results: dict[str, Any]
    policy: Policy | None = Field(None, description="Default FAIL_IF_CLAIMED_BY_OTHER.")


class AssignIn(In):
    user_id: str | None = None
    user_group: str | None = None
    override_claim: bool = False


class CancelIn(In):
    message: str | None = Field(None, description='Default "UserTaskRun was cancelled".')


class CommentIn(In):
    user_id: str
    comment: str


class DeleteCommentIn(In):
    user_id: str


class SearchQuery(Schema):
    # Annotated without `| None`: a query parameter is absent or a value, never JSON null.
    status: RunStatus = None
    user_task_def_name: str = None
    user_id: str = None
    user_group: str = None
    earliest_start: str = Field(None, json_schema_extra={"format": "date-time"}, description="ISO 8601; inclusive.")
    latest_start: str = Field(None, json_schema_extra={"format": "date-time"}, description="ISO 8601; inclusive.")
    limit: int = Field(None, ge=1, le=selectors.MAX_LIMIT, description="1–1000; default 100.")
    bookmark: str = Field(None, description="The `bookmark` of the previous page's response.")


class FieldOut(Out):
    name: str
    display_name: str
    description: str
    type: FieldType
    required: bool


class ActionOut(Out):
    type: ActionType
    hook: ActionHook
    delay_seconds: int
    user_id: str | None = None
    user_group: str | None = None


class UserTaskDefOut(Out):
    name: str
    version: int
    description: str
    created_at: Time
    fields: list[FieldOut]
    default_actions: list[ActionOut]


class UserTaskRunIdOut(Out):
    wf_run_id: str
    user_task_guid: str


class UserTaskDefIdOut(Out):
    name: str
    version: int


class EventOut(Out):
    """time, type, actor, then the payload of its type (DESIGN §2)."""

    model_config = ConfigDict(extra="allow")
    time: Time
    type: EventType
    actor: str


class CommentOut(Out):
    user_comment_id: int
    user_id: str
    comment: str | None
    deleted: bool


class FailureOut(Out):
    type: Literal["EXCEPTION", "ERROR"]
    name: str
    message: str


class UserTaskRunOut(Out):
    id: UserTaskRunIdOut
    user_task_def_id: UserTaskDefIdOut
    status: RunStatus
    user_id: str | None
    user_group: str | None
    results: dict[str, Any]
    notes: str
    scheduled_time: Time
    epoch: int
    output: dict[str, Any] | None
    failure: FailureOut | None
    on_cancellation_exception_name: str | None
    actions: list[ActionOut]
    events: list[EventOut]
    comments: list[CommentOut]


class SearchOut(Out):
    results: list[UserTaskRunIdOut]
    bookmark: str | None


class WfRunRunsOut(Out):
    results: list[UserTaskRunOut]


ERRORS = {code: Error for code in (400, 401, 403, 404, 409)}


def _run(run) -> dict:
    return selectors.run_as_dict(run)


def _actor(request) -> Actor:
    return request.auth


def _payload(model: In | None) -> dict:
    return model.model_dump(exclude_unset=True) if model is not None else {}


# --- endpoints ----------------------------------------------------------------------------------

v1 = Router()


@v1.post("/user-task-defs", response={200: UserTaskDefOut, 201: UserTaskDefOut, **ERRORS}, tags=["UserTaskDef"],
         summary="Put a UserTaskDef (201 new version, 200 identical to the latest)")
def put_user_task_def(request, payload: UserTaskDefIn):
    data = payload.model_dump()
    udef, created = services.put_user_task_def(
        name=data["name"], description=data["description"], fields=data["fields"],
        default_actions=[_drop_none(a) for a in data["default_actions"]] if data["default_actions"] is not None else None,
        actor=_actor(request),
    )
    return Status(201 if created else 200, selectors.def_as_dict(udef))


@v1.get("/user-task-defs/{name}", response={200: UserTaskDefOut, **ERRORS}, tags=["UserTaskDef"],
        summary="Get the latest version of a UserTaskDef")
def get_latest_user_task_def(request, name: str):
    return selectors.def_as_dict(services.get_user_task_def(name))


@v1.get("/user-task-defs/{name}/{version}", response={200: UserTaskDefOut, **ERRORS}, tags=["UserTaskDef"],
        summary="Get one version of a UserTaskDef")
def get_user_task_def(request, name: str, version: int = Path(..., ge=0, le=MAX_INT)):
    return selectors.def_as_dict(services.get_user_task_def(name, version))


@v1.post("/user-task-runs", response={201: UserTaskRunOut, **ERRORS}, tags=["UserTaskRun"],
         summary="Start a UserTaskRun")
def start_user_task_run(request, payload: StartRunIn):
    data = _payload(payload)
    if data.get("actions") is not None:
        data["actions"] = [_drop_none(a) for a in data["actions"]]
    run = services.start_user_task_run(actor=_actor(request), **data)
    return Status(201, _run(run))


@v1.get("/user-task-runs", response={200: SearchOut, **ERRORS}, tags=["UserTaskRun"],
        summary="Search UserTaskRuns (filters ANDed; at least one of the first four)")
def search_user_task_runs(request, filters: Query[SearchQuery]):
    unknown = sorted(set(request.GET) - set(SearchQuery.model_fields))
    if unknown:
        raise InvalidArgument(f"unknown query parameters: {', '.join(unknown)}")
    page = selectors.search_user_task_runs(actor=_actor(request), **filters.model_dump())
    return {
        "results": [{"wf_run_id": r.wf_run_id, "user_task_guid": r.user_task_guid} for r in page.results],
        "bookmark": page.bookmark,
    }


@v1.get("/user-task-runs/{wf_run_id}/{user_task_guid}", response={200: UserTaskRunOut, **ERRORS},
        tags=["UserTaskRun"], summary="Get a UserTaskRun")
def get_user_task_run(request, wf_run_id: str, user_task_guid: str):
    return _run(selectors.get_user_task_run(_actor(request), (wf_run_id, user_task_guid)))


@v1.get("/wf-runs/{wf_run_id}/user-task-runs", response={200: WfRunRunsOut, **ERRORS}, tags=["UserTaskRun"],
        summary="The UserTaskRuns of a WfRun")
def get_wf_run_user_task_runs(request, wf_run_id: str):
    runs = selectors.get_wf_run_user_task_runs(_actor(request), wf_run_id)
    return {"results": [selectors.run_as_dict(run, list(run.events.all())) for run in runs]}


@v1.post("/user-task-runs/{wf_run_id}/{user_task_guid}/complete", response={200: UserTaskRunOut, **ERRORS},
         tags=["UserTaskRun"], summary="Complete a UserTaskRun")
def complete_user_task_run(request, wf_run_id: str, user_task_guid: str, payload: CompleteIn):
    run = services.complete_user_task_run(run_id=(wf_run_id, user_task_guid), actor=_actor(request), **_payload(payload))
    return _run(run)


@v1.post("/user-task-runs/{wf_run_id}/{user_task_guid}/save", response={200: UserTaskRunOut, **ERRORS},
         tags=["UserTaskRun"], summary="Save the progress of a UserTaskRun")
def save_user_task_run_progress(request, wf_run_id: str, user_task_guid: str, payload: SaveIn):
    run = services.save_user_task_run_progress(
        run_id=(wf_run_id, user_task_guid), actor=_actor(request), **_payload(payload)
    )
    return _run(run)


@v1.post("/user-task-runs/{wf_run_id}/{user_task_guid}/assign", response={200: UserTaskRunOut, **ERRORS},
         tags=["UserTaskRun"], summary="Assign (claim, release, reassign) a UserTaskRun")
def assign_user_task_run(request, wf_run_id: str, user_task_guid: str, payload: AssignIn):
    run = services.assign_user_task_run(run_id=(wf_run_id, user_task_guid), actor=_actor(request), **_payload(payload))
    return _run(run)


@v1.post("/user-task-runs/{wf_run_id}/{user_task_guid}/cancel", response={200: UserTaskRunOut, **ERRORS},
         tags=["UserTaskRun"], summary="Cancel a UserTaskRun (the body may be omitted)")
def cancel_user_task_run(request, wf_run_id: str, user_task_guid: str, payload: CancelIn | None = None):
    run = services.cancel_user_task_run(run_id=(wf_run_id, user_task_guid), actor=_actor(request), **_payload(payload))
    return _run(run)


@v1.post("/user-task-runs/{wf_run_id}/{user_task_guid}/comments", response={201: UserTaskRunOut, **ERRORS},
         tags=["Comments"], summary="Add a comment")
def add_comment(request, wf_run_id: str, user_task_guid: str, payload: CommentIn):
    run, _comment_id = services.add_comment(run_id=(wf_run_id, user_task_guid), actor=_actor(request), **_payload(payload))
    return Status(201, _run(run))


@v1.put("/user-task-runs/{wf_run_id}/{user_task_guid}/comments/{user_comment_id}",
        response={200: UserTaskRunOut, **ERRORS}, tags=["Comments"], summary="Edit a comment")
def edit_comment(request, wf_run_id: str, user_task_guid: str, payload: CommentIn,
                 user_comment_id: int = Path(..., ge=1, le=MAX_INT)):
    run = services.edit_comment(
        run_id=(wf_run_id, user_task_guid), user_comment_id=user_comment_id, actor=_actor(request), **_payload(payload)
    )
    return _run(run)


@v1.delete("/user-task-runs/{wf_run_id}/{user_task_guid}/comments/{user_comment_id}",
           response={200: UserTaskRunOut, **ERRORS}, tags=["Comments"], summary="Delete a comment (logically)")
def delete_comment(request, wf_run_id: str, user_task_guid: str, payload: DeleteCommentIn,
                   user_comment_id: int = Path(..., ge=1, le=MAX_INT)):
    run = services.delete_comment(
        run_id=(wf_run_id, user_task_guid), user_comment_id=user_comment_id, actor=_actor(request), **_payload(payload)
    )
    return _run(run)


def _drop_none(action: dict) -> dict:
    return {k: v for k, v in action.items() if v is not None}


api.add_router("/v1/", v1)
