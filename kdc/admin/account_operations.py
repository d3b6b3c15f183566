"""Admin operations on administration itself: who am I, admin accounts, role grants, custom roles, web logins.

Nobody grants, revokes or defines a role, or creates, disables or deletes an
account, holding a permission they do not hold themselves (``_may_manage``,
``AccessControl.check_grantable``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .accounts import AdminAccount, parse_subject
from .acl import Actor, Permission, Role
from .audited import AuditedOperations
from .results import AdminsView


class AccountOperations(AuditedOperations):
    """Admin accounts, roles and their grants."""

    def whoami(self, actor: Actor) -> dict[str, Any]:
        return self._run(actor, "admin.whoami", None, None, lambda: {
            "name": actor.name, "roles": sorted(actor.roles), "via": actor.via,
            "permissions": sorted(self.acl.permissions(actor))})

    def admins(self, actor: Actor) -> AdminsView:
        return self._run(actor, "admin.admins.list", Permission.MANAGE_ADMINS, None,
                         lambda: AdminsView(self.accounts.list(), self.accounts.principal_grants()))

    def roles(self, actor: Actor) -> list[Role]:
        return self._run(actor, "admin.roles.list", Permission.MANAGE_ADMINS, None,
                         lambda: list(self.acl.roles.all().values()))

    def _may_manage(self, actor: Actor, role_names: Iterable[str]) -> None:
        """Refuse touching a subject holding more than the actor does (or handing out more)."""
        for role in self.acl.roles.resolve(role_names):
            self.acl.check_grantable(actor, role)

    def create_account(self, actor: Actor, username: str, password: str, roles: Iterable[str]) -> AdminAccount:
        wanted = sorted(set(roles))

        def check() -> None:
            for name in wanted:
                self.acl.check_grantable(actor, self.acl.roles.require(name))

        return self._run(actor, "admin.account.create", Permission.MANAGE_ADMINS, username,
                         lambda: self.accounts.create(username, password, wanted), check=check,
                         fields={"roles": ",".join(wanted) or "-"})

    def delete_account(self, actor: Actor, username: str) -> None:
        self._run(actor, "admin.account.delete", Permission.MANAGE_ADMINS, username,
                  lambda: self.accounts.delete(username),
                  check=lambda: self._may_manage(actor, self.accounts.get(username).roles))

    def set_account_disabled(self, actor: Actor, username: str, disabled: bool) -> AdminAccount:
        def change() -> AdminAccount:
            self.accounts.set_disabled(username, disabled)
            return self.accounts.get(username)

        return self._run(actor, "admin.account.disable" if disabled else "admin.account.enable",
                         Permission.MANAGE_ADMINS, username, change,
                         check=lambda: self._may_manage(actor, self.accounts.get(username).roles))

    def set_account_password(self, actor: Actor, username: str, password: str) -> None:
        """An account's new password: its owner (``via`` web) or someone who may manage it."""
        own = actor.via == "web" and actor.name == username
        self._run(actor, "admin.account.password", None if own else Permission.MANAGE_ADMINS, username,
                  lambda: self.accounts.set_password(username, password),
                  check=None if own else lambda: self._may_manage(actor, self.accounts.get(username).roles))

    def grant(self, actor: Actor, subject: str, role: str) -> frozenset[str]:
        subject = parse_subject(subject, self.realm)
        return self._run(actor, "admin.role.grant", Permission.MANAGE_ADMINS, subject,
                         lambda: self.accounts.grant(subject, role), fields={"role": role},
                         check=lambda: self.acl.check_grantable(actor, self.acl.roles.require(role)))

    def revoke(self, actor: Actor, subject: str, role: str) -> frozenset[str]:
        subject = parse_subject(subject, self.realm)
        return self._run(actor, "admin.role.revoke", Permission.MANAGE_ADMINS, subject,
                         lambda: self.accounts.revoke(subject, role), fields={"role": role},
                         check=lambda: self._may_manage(actor, [role]))

    def define_role(self, actor: Actor, name: str, permissions: Iterable[str]) -> Role:
        role = Role(name, frozenset(permissions))

        def define() -> Role:
            self.acl.roles.define(role)
            return role

        return self._run(actor, "admin.role.define", Permission.MANAGE_ADMINS, name, define,
                         fields={"permissions": ",".join(sorted(role.permissions))},
                         check=lambda: self.acl.check_grantable(actor, role))

    def delete_role(self, actor: Actor, name: str) -> None:
        self._run(actor, "admin.role.delete", Permission.MANAGE_ADMINS, name,
                  lambda: self.acl.roles.remove(name),
                  check=lambda: self.acl.check_grantable(actor, self.acl.roles.require(name)))

    # -- web logins (used by the web UI) ----------------------------------------------

    def login(self, username: str, password: str, *, address: str, via: str = "web") -> AdminAccount:
        """A password login: throttled per account and address (``AdminAccounts.authenticate``), audited."""
        return self._run(Actor(username or "-", frozenset(), address, via), "admin.login", None, None,
                         lambda: self.accounts.authenticate(username, password, address))

    def logout(self, actor: Actor) -> None:
        self._run(actor, "admin.logout", None, None, lambda: None)
