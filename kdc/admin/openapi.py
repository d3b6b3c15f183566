"""The admin JSON API's part of the KDC's OpenAPI 3.1 document, written by hand to match ``api.py``.

``kdc/openapi.py`` merges ``admin_paths`` and ``admin_schemas`` into the
document and declares the ``TallyTicket`` security scheme.
"""

from __future__ import annotations

from typing import Any

from .acl import Permission
from .policies import BOUNDS

PREFIX = "/admin/api/v1"
TAG = "administration"
_ERRORS = {
    400: "malformed JSON, missing or invalid field or query parameter",
    401: "no ticket, or the ticket or authenticator was refused (WWW-Authenticate: Tally ...)",
    403: "the client principal's roles do not grant the operation (PERMISSION_DENIED), or policy refuses it",
    404: "no such principal, account, role or route",
    409: "already exists",
    503: "the store is unavailable (also when the audit record cannot be written); see Retry-After",
}
_NAME = {"name": "name", "in": "path", "required": True, "description":
         "principal name without the realm; may contain '/', written unescaped (kadmin/admin)",
         "schema": {"type": "string"}}
_USERNAME = {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}
_ROLE = {"name": "role", "in": "path", "required": True, "schema": {"type": "string"}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(summary: str, permission: str | None, ok: dict[str, Any], *errors: int,
        body: str | None = None, params: list[dict[str, Any]] | None = None, status: int = 200) -> dict[str, Any]:
    needs = f"Needs the `{permission}` permission." if permission else "Any authenticated principal."
    doc: dict[str, Any] = {
        "summary": summary, "description": needs, "tags": [TAG], "security": [{"TallyTicket": []}],
        "responses": {str(status): ok, **{str(s): {"description": _ERRORS[s], "content": {
            "application/json": {"schema": _ref("Error")}}} for s in sorted({401, 403, 503, *errors})}},
    }
    if body is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        doc["parameters"] = params
    return doc


def _json(schema: str, description: str = "OK; Authentication-Info proves the KDC") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


_LIMIT = _query("limit", "page size", {"type": "integer", "minimum": 1})
_CURSOR = _query("cursor", "the previous page's next_cursor")


def admin_paths() -> dict[str, Any]:
    p = PREFIX
    name_op = {"parameters": [_NAME]}
    return {
        f"{p}/whoami": {"get": _op("the authenticated principal, its roles and permissions", None, _json("Whoami"))},
        f"{p}/status": {"get": _op("realm status: store health, TGS and master key versions", "show",
                                   _json("RealmStatus"))},
        f"{p}/principals": {
            "get": _op("list principals in name order (cursor paging, prefix search, filters)", "list",
                       _json("PrincipalPage"), 400, params=[
                           _query("prefix", "names starting with this"), _CURSOR, _LIMIT,
                           _query("kind", "client, service or tgs", {"enum": ["client", "service", "tgs"]}),
                           _query("status", "enabled or disabled", {"enum": ["enabled", "disabled"]})]),
            "post": _op("create a client (random key or password) or a service; fresh keys come back once", "add",
                        _json("Issued", "created"), 400, 409, body="PrincipalCreate", status=201),
        },
        f"{p}/principals/{{name}}": {
            **name_op,
            "get": _op("show a principal (never its keys)", "show", _json("Principal"), 404),
            "delete": _op("delete a principal and its keys", "delete", _json("Deleted"), 404),
        },
        f"{p}/principals/{{name}}/disable": {**name_op, "post": _op("disable a principal", "disable",
                                                                     _json("Principal"), 404)},
        f"{p}/principals/{{name}}/enable": {**name_op, "post": _op("enable a principal", "disable",
                                                                   _json("Principal"), 404)},
        f"{p}/principals/{{name}}/rotate": {**name_op, "post": _op(
            "new key version; a service's kept versions come back with extract-keys, else only the new one; "
            "ticket-granting and admin keys never", "rotate", _json("Issued"), 400, 404, body="Rotate")},
        f"{p}/principals/{{name}}/keytab": {**name_op, "post": _op(
            "download a service's keytab (never krbtgt/* or kadmin/admin)", "extract-keys",
            {"description": "the keytab", "content": {"application/octet-stream": {
                "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}, 400, 404)},
        f"{p}/onboarding": {"get": _op("outstanding enrollment tokens and open pairings (never a token or code)",
                                       "list", _json("Onboarding"))},
        f"{p}/principals/{{name}}/enrollment": {**name_op, "post": _op(
            "a one-time enrollment token for a client, shown once (redeeming it rotates the client's key)", "rotate",
            _json("Enrollment", "created"), 400, 404, body="EnrollmentCreate", status=201)},
        f"{p}/enrollments/{{enrollment_id}}/revoke": {"parameters": [
            {"name": "enrollment_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "post": _op("void an unspent enrollment token", "rotate", _json("Revoked"), 400)},
        f"{p}/principals/{{name}}/pairing": {**name_op, "post": _op(
            "open (or replace) a PIN pairing; its code is shown once", "rotate", _json("Pairing", "created"), 400, 404,
            body="PairingOpen", status=201)},
        f"{p}/principals/{{name}}/pairing/close": {**name_op, "post": _op("close an open pairing", "rotate",
                                                                          _json("Closed"), 404)},
        f"{p}/policies": {"get": _op("configuration, realm default and every override", "show", _json("Policies"))},
        f"{p}/policies/default": {
            "get": _op("the realm default policy", "show", _json("PolicyView")),
            "put": _op("replace the realm default policy", "manage-policies", _json("PolicyView"), 400,
                       body="PolicyOverride"),
        },
        f"{p}/policies/principals/{{name}}": {
            **name_op,
            "get": _op("a principal's override and effective policy", "show", _json("PolicyView"), 404),
            "put": _op("replace a principal's override", "modify", _json("PolicyView"), 400, 404,
                       body="PolicyOverride"),
            "delete": _op("remove a principal's override", "modify", _json("PolicyView"), 404),
        },
        f"{p}/audit": {"get": _op("audit events, newest first", "view-audit", _json("AuditPage"), 400, params=[
            _query("principal", "actor, target, client or service (bare names take the realm)"),
            _query("event", "event name prefix, e.g. admin. or as."), _query("outcome", "success, refused, denied"),
            _query("since", "epoch seconds, inclusive", {"type": "integer", "minimum": 0}),
            _query("until", "epoch seconds, exclusive", {"type": "integer", "minimum": 0}), _CURSOR, _LIMIT])},
        f"{p}/admins": {"get": _op("admin accounts and principals holding roles", "manage-admins", _json("Admins"))},
        f"{p}/admins/accounts": {"post": _op("create an admin account (web UI login)", "manage-admins",
                                             _json("AdminAccount", "created"), 400, 404, 409,
                                             body="AccountCreate", status=201)},
        f"{p}/admins/accounts/{{username}}": {"parameters": [_USERNAME], "delete": _op(
            "delete an admin account", "manage-admins", _json("Deleted"), 404)},
        f"{p}/admins/accounts/{{username}}/disable": {"parameters": [_USERNAME], "post": _op(
            "disable an admin account", "manage-admins", _json("AdminAccount"), 404)},
        f"{p}/admins/accounts/{{username}}/enable": {"parameters": [_USERNAME], "post": _op(
            "enable an admin account", "manage-admins", _json("AdminAccount"), 404)},
        f"{p}/admins/grant": {"post": _op("grant a role to an account or a principal (name@REALM); never a role "
                                          "holding a permission the caller lacks", "manage-admins",
                                          _json("SubjectRoles"), 400, 404, body="Grant")},
        f"{p}/admins/revoke": {"post": _op("revoke a role", "manage-admins", _json("SubjectRoles"), 400, 404,
                                           body="Grant")},
        f"{p}/roles": {"get": _op("built-in and custom roles", "manage-admins", _json("Roles"))},
        f"{p}/roles/{{role}}": {
            "parameters": [_ROLE],
            "put": _op("define or replace a custom role", "manage-admins", _json("Role"), 400, 409,
                       body="RoleDefinition"),
            "delete": _op("delete a custom role", "manage-admins", _json("Deleted"), 400, 404),
        },
    }


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


_INT = {"type": "integer"}
_STR = {"type": "string"}
_NULLABLE_INT = {"type": ["integer", "null"]}
_STRINGS = {"type": "array", "items": _STR}


def admin_schemas() -> dict[str, Any]:
    permissions = {"type": "array", "items": {"enum": [*(str(p) for p in Permission), "*"]}}
    policy_fields = {name: {"type": ["integer", "null"], "minimum": low, "maximum": high}
                     for name, (low, high) in BOUNDS.items()}
    effective = {name: _INT for name in BOUNDS}
    key_status = _object(["kvnos", "current_kvno", "rotated"], kvnos={"type": "array", "items": _INT},
                         current_kvno=_NULLABLE_INT, rotated=_NULLABLE_INT)
    return {
        "Principal": _object(
            ["name", "kind", "status", "kvnos", "keys", "created", "updated"],
            name={"type": "string", "examples": ["alice@EXAMPLE.TEST"]}, kind={"enum": ["client", "service", "tgs"]},
            status={"enum": ["enabled", "disabled"]}, disabled={"type": "boolean"},
            key_source={"enum": ["random", "password"]}, password_kdf={"type": ["object", "null"]},
            kvnos={"type": "array", "items": _INT},
            keys={"type": "array", "items": _object(["kvno", "created", "activate_at"], kvno=_INT, created=_INT,
                                                    activate_at=_INT)},
            created=_INT, updated=_INT),
        "PrincipalPage": _object(["principals", "next_cursor"], principals={"type": "array",
                                                                            "items": _ref("Principal")},
                                 next_cursor={"type": ["string", "null"]}),
        "PrincipalCreate": _object(["name", "kind"], name=_STR, kind={"enum": ["client", "service"]},
                                   password={"type": "string", "description": "clients only; else a random key"}),
        "Rotate": {"type": "object", "properties": {
            "password": {"type": "string", "description": "password clients: the new password"},
            "delay_s": {"type": "integer", "minimum": 0, "description": "services: pending this long first"}}},
        "Issued": _object(["principal", "keytab"], principal=_ref("Principal"), keytab={
            "type": ["string", "null"], "contentEncoding": "base64url",
            "description": "the fresh keys as a keytab (a client's key file), delivered once; null when none"}),
        "Deleted": _object(["deleted"], deleted=_STR),
        "PolicyOverride": {"type": "object", "properties": policy_fields, "additionalProperties": False},
        "EffectivePolicy": _object(list(BOUNDS), **effective),
        "PolicyView": _object(["principal", "override", "effective"], principal={"type": ["string", "null"]},
                              override=_ref("PolicyOverride"), effective=_ref("EffectivePolicy")),
        "Policies": _object(["config", "default", "overrides"], config=_ref("EffectivePolicy"),
                            default=_ref("PolicyOverride"),
                            overrides={"type": "object", "additionalProperties": _ref("PolicyOverride")}),
        "AuditPage": _object(["events", "next_cursor"], next_cursor={"type": ["string", "null"]}, events={
            "type": "array", "items": {**_object(["id", "event", "outcome", "time"], id=_STR, event=_STR,
                                                 outcome=_STR, time=_INT, actor=_STR, target=_STR, address=_STR,
                                                 via=_STR, error=_STR),
                                       "additionalProperties": True}}),
        "AdminAccount": _object(["username", "roles", "disabled", "created", "last_login"], username=_STR,
                                roles=_STRINGS, disabled={"type": "boolean"}, created=_INT, last_login=_NULLABLE_INT),
        "Admins": _object(["accounts", "principals"], accounts={"type": "array", "items": _ref("AdminAccount")},
                          principals={"type": "array", "items": _object(["principal", "roles"], principal=_STR,
                                                                        roles=_STRINGS)}),
        "AccountCreate": _object(["username", "password"], username=_STR, password={"type": "string", "minLength": 8},
                                 roles=_STRINGS),
        "Grant": _object(["subject", "role"], subject={"type": "string", "description": "account or name@REALM"},
                         role=_STR),
        "SubjectRoles": _object(["subject", "roles"], subject=_STR, roles=_STRINGS),
        "Role": _object(["name", "permissions", "builtin", "effective"], name=_STR, permissions=permissions,
                        builtin={"type": "boolean"}, effective=permissions),
        "Roles": _object(["roles"], roles={"type": "array", "items": _ref("Role")}),
        "RoleDefinition": _object(["permissions"], permissions=permissions),
        "Onboarding": _object(
            ["enrollments", "pairings"],
            enrollments={"type": "array", "items": _object(["enrollment_id", "principal", "created", "expires_at"],
                                                           enrollment_id=_STR, principal=_STR, created=_INT,
                                                           expires_at=_INT)},
            pairings={"type": "array", "items": _object(["principal", "created", "expires_at", "attempts_left"],
                                                        principal=_STR, created=_INT, expires_at=_INT,
                                                        attempts_left=_INT)}),
        "EnrollmentCreate": {"type": "object", "properties": {"ttl_s": {"type": "integer", "minimum": 1}}},
        "Enrollment": _object(["principal", "token"], principal=_STR, token={
            "type": "string", "description": "single use; shown once, stored nowhere in clear"}),
        "Revoked": _object(["enrollment_id", "revoked"], enrollment_id=_STR, revoked={"type": "boolean"}),
        "PairingOpen": {"type": "object", "properties": {"ttl_s": {"type": "integer", "minimum": 1},
                                                         "attempts": {"type": "integer", "minimum": 1}}},
        "Pairing": _object(["principal", "code", "display", "expires_at", "attempts"], principal=_STR,
                           code={"type": "string", "pattern": "^[0-9]{8}$"}, display=_STR, expires_at=_INT,
                           attempts=_INT),
        "Closed": _object(["principal", "closed"], principal=_STR, closed={"type": "boolean"}),
        "Whoami": _object(["name", "roles", "permissions"], name=_STR, roles=_STRINGS, via=_STR,
                          permissions=_STRINGS),
        "RealmStatus": _object(["realm", "store", "principals", "tgs_key", "master_key", "admin_service"],
                               realm=_STR, store={"type": "object"}, created=_NULLABLE_INT, principals=_INT,
                               audit_events=_INT, tgs_key=key_status, master_key=key_status,
                               admin_service={"type": "boolean"}),
    }


SECURITY_SCHEMES = {
    "TallyTicket": {
        "type": "http", "scheme": "Tally",
        "description": "Authorization: Tally <ApRequest> with a ticket for kadmin/admin@REALM, bound to the "
                       "request (docs/protocol.md, Administration); answers carry Authentication-Info",
    },
}
