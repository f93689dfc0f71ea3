"""Workflow callbacks (DESIGN §6) against a real HTTP receiver on 127.0.0.1: the signed body,
retries with exponential backoff, the attempt limit, every attempt stored, the run untouched."""

import hashlib
import hmac
import json
import socket
import threading
from datetime import datetime, timedelta, timezone as dt_timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.template import RequestContext, Template
from django.test import RequestFactory

from usertasks import services, tasks
from usertasks.actors import SYSTEM
from usertasks.models import CallbackDelivery

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)
SECRET = "a-receiver-knows-this"


class Receiver:
    """An HTTP server in a thread that answers POSTs with scripted statuses and keeps them."""

    def __init__(self):
        self.script: list[int] = []
        self.default_status = 200
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.script.pop(0) if receiver.script else receiver.default_status
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/littlehorse/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.TASKMANAGER_CALLBACK_SECRET = SECRET
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def finish(django_capture_on_commit_callbacks):
    """finish(run, "complete"|"cancel") through the services, running the after-commit work."""

    def _finish(run, how="complete"):
        with django_capture_on_commit_callbacks(execute=True):
            if how == "complete":
                services.complete_user_task_run(
                    run_id=run.run_id, user_id="obiwan", results={"requestedItem": "astromech"}, actor=SYSTEM
                )
            else:
                services.cancel_user_task_run(run_id=run.run_id, actor=SYSTEM, message="mission aborted")
        return CallbackDelivery.objects.get(user_task_run=run)

    return _finish


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    def _deliver(delivery):
        with django_capture_on_commit_callbacks(execute=True):
            return tasks.deliver_callback.call(delivery.pk)

    return _deliver


def run_state(run):
    run.refresh_from_db()
    return (run.status, run.user_id, run.user_group, run.output, run.failure, run.epoch, run.updated_at,
            run.events.count())


def attempts(delivery):
    return list(delivery.attempts.values_list("number", "status_code"))


def test_a_done_run_posts_the_signed_run_json_as_of_the_event(start_run, receiver, finish, deliver):
    run = start_run(user_id="obiwan", callback_url=receiver.url, wf_run_id="wf-42")
    delivery = finish(run)
    # Later changes are not part of the outcome that was reported.
    services.add_comment(run_id=run.run_id, user_id="obiwan", comment="thanks", actor=SYSTEM)

    assert deliver(delivery) == "DELIVERED"

    [(headers, body)] = receiver.requests
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Taskmanager-Signature"] == f"sha256={expected}"
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["event"] == "USER_TASK_RUN_DONE"
    reported = payload["user_task_run"]
    assert reported["id"] == {"wf_run_id": "wf-42", "user_task_guid": run.user_task_guid}
    assert (reported["status"], reported["output"]) == ("DONE", {"requestedItem": "astromech"})
    assert [e["type"] for e in reported["events"]] == ["ASSIGNED", "COMPLETED"]
    delivery.refresh_from_db()
    assert delivery.status == "DELIVERED" and delivery.body.encode() == body
    assert attempts(delivery) == [(1, 200)]


def test_a_cancelled_run_reports_its_failure(start_run, receiver, finish, deliver):
    run = start_run(user_id="obiwan", callback_url=receiver.url, on_cancellation_exception_name="mission-aborted")
    deliver(finish(run, "cancel"))
    payload = json.loads(receiver.requests[0][1])
    assert payload["event"] == "USER_TASK_RUN_CANCELLED"
    assert payload["user_task_run"]["failure"] == {
        "type": "EXCEPTION", "name": "mission-aborted", "message": "mission aborted"
    }


def test_a_receiver_that_fails_twice_then_succeeds_gets_three_attempts(start_run, receiver, clock, finish, deliver):
    receiver.script = [500, 503]
    run = start_run(user_id="obiwan", callback_url=receiver.url)
    delivery = finish(run)
    before = run_state(run)

    assert deliver(delivery) == "PENDING"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == T0 + timedelta(seconds=1)  # the first retry: within 10 s
    assert deliver(delivery) == ""  # not before its time
    assert len(receiver.requests) == 1

    clock.shift(1)
    assert deliver(delivery) == "PENDING"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == T0 + timedelta(seconds=3)  # backoff doubles
    clock.shift(2)
    assert deliver(delivery) == "DELIVERED"

    clock.shift(60)
    assert deliver(delivery) == ""  # nothing is sent after a 2xx
    assert len(receiver.requests) == 3
    assert attempts(delivery) == [(1, 500), (2, 503), (3, 200)]
    assert list(delivery.attempts.values_list("attempted_at", flat=True)) == [
        T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3)
    ]
    assert [a.error for a in delivery.attempts.all()] == ["HTTP 500 Internal Server Error", "HTTP 503 Service Unavailable", ""]
    assert [h["X-Taskmanager-Attempt"] for h, _ in receiver.requests] == ["1", "2", "3"]
    assert len({body for _, body in receiver.requests}) == 1  # every attempt sends the same bytes
    assert run_state(run) == before


def test_a_receiver_that_never_succeeds_stops_at_the_limit_with_the_run_untouched(
    start_run, receiver, clock, finish, deliver
):
    receiver.default_status = 500
    run = start_run(user_id="obiwan", callback_url=receiver.url)
    delivery = finish(run)
    before = run_state(run)

    outcomes = []
    for _ in range(12):
        outcomes.append(deliver(delivery))
        clock.shift(3600)
    assert outcomes == ["PENDING"] * 7 + ["FAILED"] + [""] * 4
    assert len(receiver.requests) == 8  # TASKMANAGER_CALLBACK_MAX_ATTEMPTS, default 8
    assert attempts(delivery) == [(n, 500) for n in range(1, 9)]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == ("FAILED", None)
    assert run_state(run) == before


def test_backoff_and_the_limit_are_configurable(start_run, receiver, clock, finish, deliver, settings):
    settings.TASKMANAGER_CALLBACK_BACKOFF_SECONDS = 5
    settings.TASKMANAGER_CALLBACK_MAX_ATTEMPTS = 2
    receiver.default_status = 500
    delivery = finish(start_run(user_id="obiwan", callback_url=receiver.url))
    deliver(delivery)
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == T0 + timedelta(seconds=5)
    clock.shift(5)
    assert deliver(delivery) == "FAILED"


def test_connection_errors_and_redirects_count_as_failed_attempts(start_run, receiver, clock, finish, deliver):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    refused = finish(start_run(user_id="obiwan", callback_url=f"http://127.0.0.1:{closed_port}/cb"))
    deliver(refused)
    [attempt] = refused.attempts.all()
    assert attempt.status_code is None and "refused" in attempt.error.lower()

    receiver.script = [302]
    redirected = finish(start_run(user_id="obiwan", callback_url=receiver.url))
    assert deliver(redirected) == "PENDING"
    assert attempts(redirected) == [(1, 302)]
    assert len(receiver.requests) == 1  # /elsewhere was not called


def test_a_run_without_a_callback_url_sends_nothing(start_run, finish):
    run = start_run(user_id="obiwan")
    with pytest.raises(CallbackDelivery.DoesNotExist):
        finish(run)


@pytest.mark.django_db(transaction=True)
def test_the_worker_delivers_and_retries_when_due(start_run, receiver, clock):
    receiver.script = [500]
    run = start_run(user_id="obiwan", callback_url=receiver.url)
    services.complete_user_task_run(run_id=run.run_id, user_id="obiwan", results={"requestedItem": "x"}, actor=SYSTEM)
    worker = ("run_worker", "--batch", "--no-reload", "--no-startup-delay")

    call_command(*worker, verbosity=0)
    delivery = CallbackDelivery.objects.get()
    assert (delivery.status, attempts(delivery)) == ("PENDING", [(1, 500)])
    call_command(*worker, verbosity=0)
    assert len(receiver.requests) == 1
    clock.shift(1)
    call_command(*worker, verbosity=0)
    delivery.refresh_from_db()
    assert (delivery.status, attempts(delivery)) == ("DELIVERED", [(1, 500), (2, 200)])


def test_managers_see_the_attempts_on_the_run(start_run, receiver, finish, deliver):
    receiver.script = [500]
    run = start_run(user_id="obiwan", callback_url=receiver.url)
    deliver(finish(run))
    manager = User.objects.create_user("manager")
    manager.user_permissions.add(Permission.objects.get(codename="view_audit"))
    plain = User.objects.create_user("obiwan")

    def render(user):
        request = RequestFactory().get("/")
        request.user = User.objects.get(pk=user.pk)
        template = Template('{% include "usertasks/_callback_attempts.html" with run=run %}')
        return template.render(RequestContext(request, {"run": run}))

    html = render(manager)
    assert "USER_TASK_RUN_DONE" in html and receiver.url in html and "HTTP 500 Internal Server Error" in html
    assert render(plain).strip() == ""
