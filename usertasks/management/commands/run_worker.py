"""The background worker: django-tasks-db's `db_worker` plus the sweep of DESIGN §5.

django-tasks-db never re-runs a job whose worker died mid-run, and a trigger enqueued after
commit can be lost with its process. The durable rows (ScheduledAction, CallbackDelivery) are
the truth, so this command sweeps once at start (before taking any job) and then every
TASKMANAGER_SWEEP_INTERVAL_SECONDS in a background thread, giving every due row whose trigger is
gone a new one. Takes every db_worker option (--interval, --batch, --no-reload, ...).
"""

import logging
import os
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from usertasks import hooks

logger = logging.getLogger("usertasks.worker")


def _sweep_forever(interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            hooks.sweep()
        except Exception:  # the next sweep tries again; the worker must keep running
            logger.exception("sweep failed")
        finally:
            connection.close()  # this thread's own connection


class Command(DbWorkerCommand):
    help = "Run the background worker (timers, reminders, workflow callbacks), sweeping lost timers."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--sweep-interval",
            type=float,
            default=settings.TASKMANAGER_SWEEP_INTERVAL_SECONDS,
            help="Seconds between sweeps for due timers and callbacks whose job was lost (default: %(default)s)",
        )

    def handle(self, *args, sweep_interval: float, **options):
        if not settings.TASKMANAGER_CALLBACK_SECRET:
            raise ImproperlyConfigured(
                "Set TASKMANAGER_CALLBACK_SECRET (the HMAC key of workflow callbacks), or DJANGO_DEBUG=1 for development."
            )
        reloading = options["reload"] and not options["batch"]
        # With the autoreloader, only the child process that runs the jobs sweeps.
        if not reloading or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            counts = hooks.sweep()
            if options["verbosity"]:
                self.stdout.write(
                    f"Swept: {counts['scheduled_actions']} timer(s), {counts['callback_deliveries']} callback(s) re-enqueued"
                )
            if not options["batch"] and sweep_interval > 0:
                stop = threading.Event()
                threading.Thread(
                    target=_sweep_forever, args=(sweep_interval, stop), name="taskmanager-sweep", daemon=True
                ).start()
        super().handle(*args, **options)
