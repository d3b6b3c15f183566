"""Admin operations on the realm as a whole: policies, the audit log, realm status.
"""

from __future__ import annotations

from tally_protocol.principal import Principal

from .acl import Actor, Permission
from .audit_log import AuditPage, AuditQuery
from .audited import AuditedOperations
from .policies import PolicyOverride
from .realm_status import read_realm_status
from .results import PoliciesView, PolicyView, RealmStatus


class RealmOperations(AuditedOperations):
    """Policies (realm default and per principal), audit queries and realm status."""

    def policies_overview(self, actor: Actor) -> PoliciesView:
        return self._run(actor, "admin.policy.list", Permission.SHOW, None,
                         lambda: PoliciesView(self.policies.base, self.policies.realm_default(),
                                              self.policies.overrides()))

    def policy(self, actor: Actor, name: str | Principal | None = None) -> PolicyView:
        """The realm default (``name`` None) or a principal's override, with what applies."""
        if name is None:
            return self._run(actor, "admin.policy.show", Permission.SHOW, "realm default",
                             lambda: PolicyView(None, self.policies.realm_default(), self.policies.resolve_default()))
        p = self.principal(name)

        def show() -> PolicyView:
            self.db.get(p)
            return PolicyView(str(p), self.policies.override(p), self.policies.resolve(p))

        return self._run(actor, "admin.policy.show", Permission.SHOW, p, show)

    def set_policy(self, actor: Actor, name: str | Principal | None, policy: PolicyOverride) -> PolicyView:
        """Replace the realm default (``manage-policies``) or a principal's override (``modify``)."""
        changed = sorted(k for k, v in policy.to_dict().items() if v is not None)
        if name is None:
            def set_default() -> PolicyView:
                self.policies.set_default(policy)
                return PolicyView(None, policy, self.policies.resolve_default())

            return self._run(actor, "admin.policy.set", Permission.MANAGE_POLICIES, "realm default", set_default,
                             fields={"fields": ",".join(changed) or "-"})
        p = self.principal(name)

        def set_override() -> PolicyView:
            self.db.get(p)
            self.policies.set_override(p, policy)
            return PolicyView(str(p), policy, self.policies.resolve(p))

        return self._run(actor, "admin.policy.set", Permission.MODIFY, p, set_override,
                         fields={"fields": ",".join(changed) or "-"})

    # -- audit --------------------------------------------------------------------

    def audit_events(self, actor: Actor, query: AuditQuery) -> AuditPage:
        subjects: tuple[str, ...] = ()
        if query.principal:
            subjects = (query.principal,) if "@" in query.principal else (query.principal,
                                                                          f"{query.principal}@{self.realm}")
        return self._run(actor, "admin.audit.query", Permission.VIEW_AUDIT, None,
                         lambda: self.audit_log.query(query, subjects=subjects),
                         fields={"filter_principal": query.principal, "filter_event": query.event},
                         result_fields=lambda page: {"count": len(page.records)})

    # -- the realm ------------------------------------------------------------------

    def realm_status(self, actor: Actor) -> RealmStatus:
        return self._run(actor, "admin.status", Permission.SHOW, None,
                         lambda: read_realm_status(self.store, self.db, self.audit_log, self._clock))
