"""Demo users, groups, definitions and runs in every status (DESIGN §9). Idempotent: running it
twice changes nothing. Every run and event is made through the services, like real traffic."""

from django.contrib.auth.models import Group, Permission, User
from django.core.management.base import BaseCommand
from django.db import transaction

from usertasks import services
from usertasks.actors import SYSTEM, Actor
from usertasks.models import WfRun

PASSWORDS_NOTE = "each demo user's password is their username"

USERS = [
    # username, groups, superuser
    ("admin", [], True),
    ("manager", ["managers"], False),
    ("obiwan", ["jedi-council"], False),
    ("yoda", ["jedi-council"], False),
    ("mace", ["jedi-temple"], False),
    ("wf-engine", ["workflow-engines"], False),
]
GROUP_PERMISSIONS = {
    "managers": ["view_audit"],
    "jedi-council": [],
    "jedi-temple": [],
    "workflow-engines": ["act_for_others"],
}
DEFS = [
    (
        "it-request",
        "Ask the quartermaster for equipment.",
        [
            {"name": "requestedItem", "display_name": "Requested item", "type": "STR", "required": True,
             "description": "What do you need?"},
            {"name": "justification", "display_name": "Justification", "type": "STR", "required": False,
             "description": "Explain why you need it (long text welcome)."},
        ],
    ),
    (
        "approve-funds-for-mission",
        "Approve or reject the funds a mission asks for.",
        [
            {"name": "amount", "display_name": "Amount", "type": "DOUBLE", "required": True,
             "description": "Credits to release."},
            {"name": "approved", "display_name": "Approved", "type": "BOOL", "required": True},
            {"name": "reason", "display_name": "Reason", "type": "STR", "required": False},
        ],
    ),
]


class Command(BaseCommand):
    help = "Load demo users, groups, task definitions and runs (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        self._groups_and_users()
        for name, description, fields in DEFS:
            services.put_user_task_def(name=name, description=description, fields=fields, actor=SYSTEM)
        created = self._runs()
        self.stdout.write(f"Demo data ready ({created} new runs); logins: admin, manager, obiwan, yoda, mace — {PASSWORDS_NOTE}.")

    def _groups_and_users(self):
        for group_name, codenames in GROUP_PERMISSIONS.items():
            group, _ = Group.objects.get_or_create(name=group_name)
            perms = Permission.objects.filter(content_type__app_label="usertasks", codename__in=codenames)
            group.permissions.add(*perms)
        for username, groups, superuser in USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"is_superuser": superuser, "is_staff": superuser, "email": f"{username}@example.com"},
            )
            if created:
                user.set_password(username)
                user.save(update_fields=["password"])
            user.groups.add(*Group.objects.filter(name__in=groups))

    def _runs(self) -> int:
        obiwan = Actor(name="obiwan", groups=frozenset({"jedi-council"}))
        plans = [
            ("demo-it-unassigned", "it-request", None, "jedi-council", "Obi-Wan's lightsaber fell down a mine shaft.", None),
            ("demo-it-yoda", "it-request", "yoda", "jedi-council", "New walking stick, please.", None),
            ("demo-funds-temple", "approve-funds-for-mission", None, "jedi-temple", "Mission to Geonosis.", None),
            ("demo-funds-obiwan", "approve-funds-for-mission", "obiwan", "jedi-council", "Mission to Kamino.", None),
            ("demo-it-done", "it-request", "obiwan", "jedi-council", "Spare comlink.", "complete"),
            ("demo-funds-cancelled", "approve-funds-for-mission", None, "jedi-council", "Mission to Mustafar.", "cancel"),
        ]
        created = 0
        for wf_run_id, def_name, user_id, group, notes, finish in plans:
            if WfRun.objects.filter(pk=wf_run_id).exists():
                continue
            run = services.start_user_task_run(
                user_task_def_name=def_name, wf_run_id=wf_run_id, user_id=user_id, user_group=group,
                notes=notes, actor=SYSTEM,
            )
            created += 1
            if finish == "complete":
                services.add_comment(run_id=run.run_id, user_id="obiwan", comment="Needed before the next mission.", actor=obiwan)
                services.complete_user_task_run(
                    run_id=run.run_id, user_id="obiwan", actor=obiwan,
                    results={"requestedItem": "comlink", "justification": "Mine was lost on Utapau."},
                )
            elif finish == "cancel":
                services.cancel_user_task_run(run_id=run.run_id, message="Mission called off.", actor=SYSTEM)
        return created
