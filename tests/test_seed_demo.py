from django.contrib.auth.models import User
from django.core.management import call_command

from usertasks.actors import Actor
from usertasks.models import UserTaskDef, UserTaskEvent, UserTaskRun


def _state():
    return (
        User.objects.count(),
        UserTaskDef.objects.count(),
        sorted(UserTaskRun.objects.values_list("wf_run_id", "status", "user_id", "user_group", "epoch")),
        UserTaskEvent.objects.count(),
    )


def test_seed_demo_loads_users_defs_and_runs_in_every_status(db):
    call_command("seed_demo")
    assert set(User.objects.values_list("username", flat=True)) >= {"admin", "manager", "obiwan", "yoda", "mace"}
    assert set(UserTaskRun.objects.values_list("status", flat=True)) == {"UNASSIGNED", "ASSIGNED", "DONE", "CANCELLED"}
    it_request = UserTaskDef.objects.get(name="it-request")
    assert [(f.name, f.type, f.required) for f in it_request.fields.all()] == [
        ("requestedItem", "STR", True),
        ("justification", "STR", False),
    ]
    funds = UserTaskDef.objects.get(name="approve-funds-for-mission")
    assert [(f.name, f.type, f.required) for f in funds.fields.all()] == [
        ("amount", "DOUBLE", True),
        ("approved", "BOOL", True),
        ("reason", "STR", False),
    ]
    assert UserTaskRun.objects.filter(user_task_def_name="it-request", user_group="jedi-council", status="UNASSIGNED").exists()


def test_seed_demo_twice_changes_nothing(db):
    call_command("seed_demo")
    before = _state()
    call_command("seed_demo")
    assert _state() == before


def test_demo_users_have_the_documented_groups_permissions_and_passwords(db):
    call_command("seed_demo")
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password("admin")
    manager = Actor.for_user(User.objects.get(username="manager"))
    assert manager.has("usertasks.view_audit") and manager.sees_all
    obiwan = Actor.for_user(User.objects.get(username="obiwan"))
    assert obiwan.groups == {"jedi-council"} and not obiwan.sees_all
    assert Actor.for_user(User.objects.get(username="mace")).groups == {"jedi-temple"}
    assert Actor.for_user(User.objects.get(username="wf-engine")).acts_for_others
