"""The admin JSON API, ``/admin/api/v1/...``: ``AdminOperations`` over HTTP.

Authentication is the product's own: every request carries ``Authorization:
Tally <ApRequest>`` for ``kadmin/admin@REALM``, checked by the relying
services' ``Verifier`` (ticket, authenticator, request binding, replay claim
last), and every answer to an authenticated request carries
``Authentication-Info`` bound to its status and body, errors included.  A
refused authentication is 401 with ``WWW-Authenticate: Tally``.  The client
principal's roles (``accounts.roles_of``) decide the rest: 403
``PERMISSION_DENIED`` when they do not allow the operation.

Principal names may contain ``/`` (``kadmin/admin``) and are written
unescaped in paths; actions are ``POST .../<name>/<action>`` so a name is
never mistaken for an action.  Responses are ``Cache-Control: no-store``:
some carry fresh keys.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from relying_service.request_binding import binding_from_environ
from tally_protocol.errors import InvalidRequest, TallyError
from tally_protocol.keytab import dump_keytab
from tally_protocol.messages.ap_rep import HEADER_NAME
from tally_protocol.verify import Verified
from tally_runtime.http_errors import error_response

from .acl import Actor
from .audit_log import AuditQuery
from .extension import admin_state
from .operations import AdminOperations
from .policies import PolicyOverride
from .results import onboarding_to_dict, pairing_to_dict

admin_api = Blueprint("admin_api", __name__, url_prefix="/admin/api/v1")
_VERIFIED = "tally_admin_verified"
_ACTOR = "tally_admin_actor"


@admin_api.before_request
def _authenticate() -> Response | None:
    state = admin_state()
    try:
        binding = binding_from_environ(request.environ, request.get_data(cache=True), state.binding)
        verified = state.verifier.verify(request.headers.get("Authorization"), binding)
    except TallyError as err:
        return error_response(err, realm=state.verifier.realm, challenge=True)
    setattr(g, _VERIFIED, verified)
    client = str(verified.client)
    setattr(g, _ACTOR, Actor(client, state.operations.accounts.roles_of(client), request.remote_addr or "unknown",
                             "api"))
    return None


@admin_api.after_request
def _prove(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    verified: Verified | None = g.get(_VERIFIED)
    if verified is not None:
        response.direct_passthrough = False
        body = b"" if request.method == "HEAD" else response.get_data()
        response.headers[HEADER_NAME] = admin_state().verifier.reply_header(verified, response.status_code, body)
    return response


def _ops() -> tuple[AdminOperations, Actor]:
    actor: Actor = getattr(g, _ACTOR)
    return admin_state().operations, actor


def _body() -> dict[str, Any]:
    data = request.get_json(force=True, silent=True) if request.get_data(cache=True) else {}
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def _string(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"field {name!r} must be a non-empty string")
    return value


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise InvalidRequest(f"query parameter {name!r} must be a non-negative whole number")
    return int(raw)


def _created(payload: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(payload), 201


# -- who and what -------------------------------------------------------------------


@admin_api.get("/whoami")
def whoami() -> dict[str, Any]:
    ops, actor = _ops()
    return ops.whoami(actor)


@admin_api.get("/status")
def status() -> dict[str, Any]:
    ops, actor = _ops()
    return ops.realm_status(actor).to_dict()


# -- principals -----------------------------------------------------------------------


@admin_api.get("/principals")
def list_principals() -> dict[str, Any]:
    ops, actor = _ops()
    limit = _int_arg("limit")
    page = ops.list_principals(actor, prefix=request.args.get("prefix", ""), cursor=request.args.get("cursor") or None,
                               limit=100 if limit is None else limit, kind=request.args.get("kind") or None,
                               status=request.args.get("status") or None)
    return page.to_dict()


@admin_api.post("/principals")
def add_principal() -> tuple[Response, int]:
    ops, actor = _ops()
    data = _body()
    name, kind = _string(data, "name"), data.get("kind")
    password = _string(data, "password", required=False)
    assert name is not None
    if kind == "client":
        return _created(ops.add_client(actor, name, password=password).to_dict())
    if kind == "service":
        if password is not None:
            raise InvalidRequest("services have random keys: no password")
        return _created(ops.add_service(actor, name).to_dict())
    raise InvalidRequest("field 'kind' must be 'client' or 'service'")


@admin_api.get("/principals/<path:name>")
def show_principal(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    return ops.show(actor, name).to_dict()


@admin_api.delete("/principals/<path:name>")
def delete_principal(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    ops.delete(actor, name)
    return {"deleted": str(ops.principal(name))}


@admin_api.post("/principals/<path:name>/disable")
def disable_principal(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    return ops.disable(actor, name).to_dict()


@admin_api.post("/principals/<path:name>/enable")
def enable_principal(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    return ops.enable(actor, name).to_dict()


@admin_api.post("/principals/<path:name>/rotate")
def rotate_principal(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    data = _body()
    delay = data.get("delay_s")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int) or delay < 0):
        raise InvalidRequest("field 'delay_s' must be a non-negative whole number of seconds")
    return ops.rotate(actor, name, password=_string(data, "password", required=False), delay_s=delay).to_dict()


@admin_api.post("/principals/<path:name>/keytab")
def export_keytab(name: str) -> Response:
    ops, actor = _ops()
    principal, keyset = ops.export_keytab(actor, name)
    filename = principal.name.replace("/", "_") + ".keytab"
    return Response(dump_keytab(principal, keyset), mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"field {name!r} must be a whole number")
    return value


# -- onboarding -----------------------------------------------------------------------


@admin_api.get("/onboarding")
def onboarding() -> dict[str, Any]:
    ops, actor = _ops()
    return onboarding_to_dict(*ops.onboarding(actor))


@admin_api.post("/principals/<path:name>/enrollment")
def create_enrollment(name: str) -> tuple[Response, int]:
    ops, actor = _ops()
    ttl = _optional_int(_body(), "ttl_s")
    p = ops.principal(name)
    token = ops.create_enrollment(actor, p) if ttl is None else ops.create_enrollment(actor, p, ttl_s=ttl)
    return _created({"principal": str(p), "token": token})


@admin_api.post("/enrollments/<enrollment_id>/revoke")
def revoke_enrollment(enrollment_id: str) -> dict[str, Any]:
    ops, actor = _ops()
    return {"enrollment_id": enrollment_id, "revoked": ops.revoke_enrollment(actor, enrollment_id)}


@admin_api.post("/principals/<path:name>/pairing")
def open_pairing(name: str) -> tuple[Response, int]:
    ops, actor = _ops()
    data = _body()
    options = {k: v for k in ("ttl_s", "attempts") if (v := _optional_int(data, k)) is not None}
    p = ops.principal(name)
    return _created(pairing_to_dict(p, ops.open_pairing(actor, p, **options)))


@admin_api.post("/principals/<path:name>/pairing/close")
def close_pairing(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    return {"principal": str(ops.principal(name)), "closed": ops.close_pairing(actor, name)}


# -- policies -------------------------------------------------------------------------


@admin_api.get("/policies")
def policies() -> dict[str, Any]:
    ops, actor = _ops()
    return ops.policies_overview(actor).to_dict()


@admin_api.get("/policies/default")
def default_policy() -> dict[str, Any]:
    ops, actor = _ops()
    return ops.policy(actor).to_dict()


@admin_api.put("/policies/default")
def set_default_policy() -> dict[str, Any]:
    ops, actor = _ops()
    return ops.set_policy(actor, None, PolicyOverride.from_dict(_body())).to_dict()


@admin_api.get("/policies/principals/<path:name>")
def principal_policy(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    return ops.policy(actor, name).to_dict()


@admin_api.put("/policies/principals/<path:name>")
def set_principal_policy(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    return ops.set_policy(actor, name, PolicyOverride.from_dict(_body())).to_dict()


@admin_api.delete("/policies/principals/<path:name>")
def clear_principal_policy(name: str) -> dict[str, Any]:
    ops, actor = _ops()
    return ops.set_policy(actor, name, PolicyOverride()).to_dict()


# -- audit ----------------------------------------------------------------------------


@admin_api.get("/audit")
def audit_events() -> dict[str, Any]:
    ops, actor = _ops()
    args = request.args
    limit = _int_arg("limit")
    query = AuditQuery(principal=args.get("principal") or None, event=args.get("event") or None,
                       outcome=args.get("outcome") or None, since=_int_arg("since"), until=_int_arg("until"),
                       cursor=args.get("cursor") or None, limit=50 if limit is None else limit)
    return ops.audit_events(actor, query).to_dict()


# -- admins and roles ---------------------------------------------------------------


@admin_api.get("/admins")
def admins() -> dict[str, Any]:
    ops, actor = _ops()
    return ops.admins(actor).to_dict()


@admin_api.post("/admins/accounts")
def create_account() -> tuple[Response, int]:
    ops, actor = _ops()
    data = _body()
    roles = data.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidRequest("field 'roles' must be a list of role names")
    username, password = _string(data, "username"), _string(data, "password")
    assert username is not None and password is not None
    return _created(ops.create_account(actor, username, password, roles).to_dict())


@admin_api.delete("/admins/accounts/<username>")
def delete_account(username: str) -> dict[str, Any]:
    ops, actor = _ops()
    ops.delete_account(actor, username)
    return {"deleted": username}


@admin_api.post("/admins/accounts/<username>/disable")
def disable_account(username: str) -> dict[str, Any]:
    ops, actor = _ops()
    return ops.set_account_disabled(actor, username, True).to_dict()


@admin_api.post("/admins/accounts/<username>/enable")
def enable_account(username: str) -> dict[str, Any]:
    ops, actor = _ops()
    return ops.set_account_disabled(actor, username, False).to_dict()


def _grant_args() -> tuple[str, str]:
    data = _body()
    subject, role = _string(data, "subject"), _string(data, "role")
    assert subject is not None and role is not None
    return subject, role


@admin_api.post("/admins/grant")
def grant() -> dict[str, Any]:
    ops, actor = _ops()
    subject, role = _grant_args()
    return {"subject": subject, "roles": sorted(ops.grant(actor, subject, role))}


@admin_api.post("/admins/revoke")
def revoke() -> dict[str, Any]:
    ops, actor = _ops()
    subject, role = _grant_args()
    return {"subject": subject, "roles": sorted(ops.revoke(actor, subject, role))}


@admin_api.get("/roles")
def roles() -> dict[str, Any]:
    ops, actor = _ops()
    return {"roles": [r.to_dict() for r in ops.roles(actor)]}


@admin_api.put("/roles/<role>")
def define_role(role: str) -> dict[str, Any]:
    ops, actor = _ops()
    permissions = _body().get("permissions")
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise InvalidRequest("field 'permissions' must be a list of permission names")
    return ops.define_role(actor, role, permissions).to_dict()


@admin_api.delete("/roles/<role>")
def delete_role(role: str) -> dict[str, Any]:
    ops, actor = _ops()
    ops.delete_role(actor, role)
    return {"deleted": role}
