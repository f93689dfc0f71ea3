"""Who is acting: the identity every service call carries, and what DESIGN §7 lets it do.

`user_id` and `user_group` are plain strings from an external identity provider; in the web UI
and the API they are the Django username and group names of the authenticated user.
"""

from dataclasses import dataclass, field

PERM_ACT_FOR_OTHERS = "usertasks.act_for_others"
PERM_ASSIGN = "usertasks.assign_usertaskrun"
PERM_CANCEL = "usertasks.cancel_usertaskrun"
PERM_VIEW_AUDIT = "usertasks.view_audit"
PERM_PUT_DEF = "usertasks.add_usertaskdef"
PERM_START_RUN = "usertasks.add_usertaskrun"


@dataclass(frozen=True)
class Actor:
    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    permissions: frozenset[str] = field(default_factory=frozenset)
    is_superuser: bool = False

    @classmethod
    def for_user(cls, user) -> "Actor":
        """The actor for a Django user: username, group names and permissions (two queries)."""
        return cls(
            name=user.get_username(),
            groups=frozenset(user.groups.values_list("name", flat=True)),
            permissions=frozenset(user.get_all_permissions()) if user.is_active else frozenset(),
            is_superuser=bool(user.is_active and user.is_superuser),
        )

    @classmethod
    def for_active_user(cls, user) -> "Actor":
        """What for_user gives, for a user already known to be active (an API token's), in one
        query: the group names and, unless a superuser (whose `has` is always true, so its
        `permissions` stay empty here), the permissions held directly or through a group — for
        which ModelBackend takes two queries, and for a superuser loads every permission twice."""
        from django.contrib.auth.models import Group, Permission
        from django.db.models import CharField, Q, Value
        from django.db.models.functions import Concat

        rows = Group.objects.filter(user=user).order_by().values_list(Value("g", output_field=CharField()), "name")
        if not user.is_superuser:
            # Duplicates (a permission held directly and through groups) collapse into the set below.
            rows = rows.union(
                Permission.objects.filter(Q(user=user) | Q(group__user=user)).order_by().values_list(
                    Value("p", output_field=CharField()),
                    Concat("content_type__app_label", Value("."), "codename", output_field=CharField()),
                ),
                all=True,
            )
        groups, permissions = set(), set()
        for kind, name in rows:
            (groups if kind == "g" else permissions).add(name)
        return cls(
            name=user.get_username(),
            groups=frozenset(groups),
            permissions=frozenset(permissions),
            is_superuser=bool(user.is_superuser),
        )

    def has(self, perm: str) -> bool:
        return self.is_superuser or perm in self.permissions

    @property
    def acts_for_others(self) -> bool:
        """A workflow engine or service account: may pass any user_id and sees every run."""
        return self.has(PERM_ACT_FOR_OTHERS)

    @property
    def can_assign(self) -> bool:
        return self.acts_for_others or self.has(PERM_ASSIGN)

    @property
    def can_cancel(self) -> bool:
        return self.acts_for_others or self.has(PERM_CANCEL)

    @property
    def sees_all(self) -> bool:
        return self.acts_for_others or any(self.has(p) for p in (PERM_VIEW_AUDIT, PERM_ASSIGN, PERM_CANCEL))

    def can_see(self, run) -> bool:
        if self.sees_all:
            return True
        return (run.user_id is not None and run.user_id == self.name) or (
            run.user_group is not None and run.user_group in self.groups
        )

    # What the web UI offers (DESIGN §7). These only decide which buttons to render; the services
    # enforce the same rules on every request, so a forged POST is refused there.

    def as_member(self) -> "Actor":
        """The same person without permissions: what they see as a member of their groups."""
        return Actor(name=self.name, groups=self.groups)

    def may_claim(self, run) -> bool:
        return run.status == "UNASSIGNED" and (self.can_assign or run.user_group in self.groups)

    def may_release(self, run) -> bool:
        return (
            run.status == "ASSIGNED"
            and run.user_group is not None
            and (self.can_assign or run.user_id == self.name)
        )

    def may_work_on(self, run) -> bool:
        """Save progress and complete: a run assigned to them, or an UNASSIGNED run of their group."""
        if run.is_final:
            return False
        if run.user_id is not None:
            return run.user_id == self.name
        return run.user_group in self.groups

    def may_change_comment(self, comment: dict) -> bool:
        """Edit or delete a comment: its author, or an admin / a caller acting for others."""
        if comment.get("deleted"):
            return False
        return comment.get("user_id") == self.name or self.acts_for_others or self.is_superuser


# Timers and maintenance commands act as `system`, which may do anything.
SYSTEM = Actor(name="system", is_superuser=True)
