"""django-tasks functions run by the worker (`manage.py run_worker`). Each is only a trigger: the
work and its at-most-once guarantee live in usertasks/hooks.py, keyed by a durable row."""

from django_tasks import task

from . import hooks


@task()
def fire_scheduled_action(scheduled_action_id: int) -> str:
    """Fire one timed hook (REMINDER, CANCEL, REASSIGN) when it is due; see hooks.fire."""
    return hooks.fire(scheduled_action_id)


@task()
def deliver_callback(callback_delivery_id: int) -> str:
    """Make the next attempt of one workflow callback; see hooks.deliver."""
    return hooks.deliver(callback_delivery_id)
