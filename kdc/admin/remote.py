"""``RemoteAdmin``: ``AdminInterface`` over the admin JSON API (``tally admin --remote URL``).

Requests are signed with a ticket for ``kadmin/admin@REALM`` from the
credential cache (``tally login`` as an admin principal first) by the SDK's
``Client``, which also checks every answer's ``Authentication-Info``: an
answer the KDC did not prove is never used.  Error bodies become the typed
errors the server raised, so the CLI reports them exactly as in local mode.

Passwords and fresh keys travel in request and response bodies, which the
protocol authenticates but does not encrypt: only ``https://`` URLs are
accepted, and plain ``http://`` only to a loopback address.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from client_sdk.client import Client
from client_sdk.wire_errors import error_from_body
from tally_protocol.errors import ConfigurationError, KdcUnreachable, MalformedMessage, TallyError
from tally_protocol.keys import Keyset
from tally_protocol.keytab import load_keytab
from tally_protocol.principal import Principal

from ..enrollment import OutstandingEnrollment
from ..pairing import OpenPairing, PairingCode
from .accounts import AdminAccount
from .acl import ADMIN_SERVICE_NAME, Role
from .audit_log import AuditPage, AuditQuery
from .policies import PolicyOverride
from .results import (
    AdminsView,
    Issued,
    PoliciesView,
    PolicyView,
    PrincipalPage,
    PrincipalSummary,
    RealmStatus,
    account_from_dict,
    onboarding_from_dict,
    pairing_from_dict,
    role_from_dict,
)

API_PREFIX = "/admin/api/v1"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def check_admin_url(url: str) -> str:
    """The API base URL without a trailing slash; refuses cleartext HTTP beyond loopback."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ConfigurationError(f"invalid URL {url!r}") from None
    if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
        raise ConfigurationError(f"--remote needs an http(s) URL of the KDC, not {url!r}")
    if parts.scheme == "http" and host not in LOOPBACK:
        raise ConfigurationError("--remote sends passwords and receives keys: use https:// (plain http:// only to "
                                 "a loopback address)")
    return url.rstrip("/")


class RemoteAdmin:
    """The admin API of the KDC at ``base_url``, as ``client``'s principal."""

    def __init__(self, base_url: str, client: Client) -> None:
        self._base = check_admin_url(base_url) + API_PREFIX
        self._client = client
        self.realm = client.principal.realm
        self._service = str(Principal(ADMIN_SERVICE_NAME, self.realm))

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              body: Any = None) -> requests.Response:
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            response = self._client.request(method, self._base + path, service=self._service, params=query,
                                            data=data, headers=headers)
        except requests.RequestException as err:
            raise KdcUnreachable(f"cannot reach {self._base}: {type(err).__name__}") from err
        if response.status_code >= 400:
            refusal = error_from_body(response.content, response.headers.get("Retry-After"))
            raise refusal if refusal is not None else TallyError(f"the admin API answered HTTP {response.status_code}")
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return json.loads(response.content)
        except ValueError:
            raise MalformedMessage("the admin API answered with something other than JSON") from None

    # -- principals -----------------------------------------------------------------

    def list_principals(self, *, prefix: str = "", cursor: str | None = None, limit: int = 100,
                        kind: str | None = None, status: str | None = None) -> PrincipalPage:
        return PrincipalPage.from_dict(self._json("GET", "/principals", params={
            "prefix": prefix, "cursor": cursor, "limit": limit, "kind": kind, "status": status}))

    def show(self, name: str) -> PrincipalSummary:
        return PrincipalSummary.from_dict(self._json("GET", f"/principals/{name}"))

    def add_client(self, name: str, *, password: str | None = None) -> Issued:
        body: dict[str, Any] = {"name": name, "kind": "client"}
        if password is not None:
            body["password"] = password
        return Issued.from_dict(self._json("POST", "/principals", body=body))

    def add_service(self, name: str) -> Issued:
        return Issued.from_dict(self._json("POST", "/principals", body={"name": name, "kind": "service"}))

    def disable(self, name: str) -> PrincipalSummary:
        return PrincipalSummary.from_dict(self._json("POST", f"/principals/{name}/disable"))

    def enable(self, name: str) -> PrincipalSummary:
        return PrincipalSummary.from_dict(self._json("POST", f"/principals/{name}/enable"))

    def rotate(self, name: str, *, password: str | None = None, delay_s: int | None = None) -> Issued:
        body: dict[str, Any] = {}
        if password is not None:
            body["password"] = password
        if delay_s is not None:
            body["delay_s"] = delay_s
        return Issued.from_dict(self._json("POST", f"/principals/{name}/rotate", body=body))

    def delete(self, name: str) -> None:
        self._json("DELETE", f"/principals/{name}")

    def export_keytab(self, name: str) -> tuple[Principal, Keyset]:
        return load_keytab(self._send("POST", f"/principals/{name}/keytab").content)

    # -- policies and audit ---------------------------------------------------------------

    def policies_overview(self) -> PoliciesView:
        return PoliciesView.from_dict(self._json("GET", "/policies"))

    def policy(self, name: str | None = None) -> PolicyView:
        path = "/policies/default" if name is None else f"/policies/principals/{name}"
        return PolicyView.from_dict(self._json("GET", path))

    def set_policy(self, name: str | None, policy: PolicyOverride) -> PolicyView:
        path = "/policies/default" if name is None else f"/policies/principals/{name}"
        body = {k: v for k, v in policy.to_dict().items() if v is not None}
        return PolicyView.from_dict(self._json("PUT", path, body=body))

    def audit_events(self, query: AuditQuery) -> AuditPage:
        return AuditPage.from_dict(self._json("GET", "/audit", params={
            "principal": query.principal, "event": query.event, "outcome": query.outcome, "since": query.since,
            "until": query.until, "cursor": query.cursor, "limit": query.limit}))

    # -- admins and roles ---------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        doc = self._json("GET", "/whoami")
        if not isinstance(doc, dict):
            raise MalformedMessage("the admin API sent a malformed identity")
        return doc

    def admins(self) -> AdminsView:
        return AdminsView.from_dict(self._json("GET", "/admins"))

    def roles(self) -> list[Role]:
        doc = self._json("GET", "/roles")
        try:
            return [role_from_dict(r) for r in doc["roles"]]
        except (KeyError, TypeError) as e:
            raise MalformedMessage("the admin API sent a malformed role list") from e

    def create_account(self, username: str, password: str, roles: Iterable[str]) -> AdminAccount:
        return account_from_dict(self._json("POST", "/admins/accounts", body={
            "username": username, "password": password, "roles": sorted(roles)}))

    def delete_account(self, username: str) -> None:
        self._json("DELETE", f"/admins/accounts/{username}")

    def set_account_disabled(self, username: str, disabled: bool) -> AdminAccount:
        action = "disable" if disabled else "enable"
        return account_from_dict(self._json("POST", f"/admins/accounts/{username}/{action}"))

    def _roles(self, path: str, subject: str, role: str) -> frozenset[str]:
        doc = self._json("POST", path, body={"subject": subject, "role": role})
        try:
            return frozenset(str(r) for r in doc["roles"])
        except (KeyError, TypeError) as e:
            raise MalformedMessage("the admin API sent a malformed role list") from e

    def grant(self, subject: str, role: str) -> frozenset[str]:
        return self._roles("/admins/grant", subject, role)

    def revoke(self, subject: str, role: str) -> frozenset[str]:
        return self._roles("/admins/revoke", subject, role)

    def define_role(self, name: str, permissions: Iterable[str]) -> Role:
        return role_from_dict(self._json("PUT", f"/roles/{name}", body={"permissions": sorted(permissions)}))

    def delete_role(self, name: str) -> None:
        self._json("DELETE", f"/roles/{name}")

    def realm_status(self) -> RealmStatus:
        return RealmStatus.from_dict(self._json("GET", "/status"))

    # -- onboarding ---------------------------------------------------------------------

    def onboarding(self) -> tuple[list[OutstandingEnrollment], list[OpenPairing]]:
        return onboarding_from_dict(self._json("GET", "/onboarding"))

    def create_enrollment(self, name: str, *, ttl_s: int | None = None) -> str:
        body = {} if ttl_s is None else {"ttl_s": ttl_s}
        doc = self._json("POST", f"/principals/{name}/enrollment", body=body)
        token = doc.get("token") if isinstance(doc, dict) else None
        if not isinstance(token, str):
            raise MalformedMessage("the admin API sent a malformed enrollment token")
        return token

    def revoke_enrollment(self, enrollment_id: str) -> bool:
        return bool(self._json("POST", f"/enrollments/{enrollment_id}/revoke").get("revoked"))

    def open_pairing(self, name: str, *, ttl_s: int | None = None, attempts: int | None = None) -> PairingCode:
        body = {k: v for k, v in (("ttl_s", ttl_s), ("attempts", attempts)) if v is not None}
        return pairing_from_dict(self._json("POST", f"/principals/{name}/pairing", body=body))

    def close_pairing(self, name: str) -> bool:
        return bool(self._json("POST", f"/principals/{name}/pairing/close").get("closed"))
