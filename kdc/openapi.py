"""The KDC's HTTP API as an OpenAPI 3.1 document, written by hand to match ``views.py`` and ``exchange_front.py``.

Binary protocol messages travel as base64url without padding (RFC 4648 §5);
their layout is specified in docs/protocol.md, not here.  The admin API's
paths and schemas come from ``kdc/admin/openapi.py``.
"""

from __future__ import annotations

from typing import Any

from tally_protocol.codes import ErrorCode

from .admin.openapi import SECURITY_SCHEMES, admin_paths, admin_schemas

_B64URL = {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "contentEncoding": "base64url"}


def _body(field: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [field],
        "properties": {field: {**_B64URL, "description": description}},
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "malformed JSON, missing field, bad base64url or protocol message",
        401: "pre-authentication failed (also for unknown names), ticket or authenticator refused",
        403: "principal disabled or request refused by policy",
        404: "unknown service principal",
        413: "request body larger than the limit (REQUEST_TOO_LARGE, with limit)",
        429: "locked out, or rate limited per address or per principal (limit); see Retry-After and retry_after",
        503: "the backing store is unavailable; see Retry-After",
    }
    return {str(s): _json("#/components/schemas/Error", text[s]) for s in statuses}


def _post(summary: str, request_schema: str, response_schema: str, ok: str, *errors: int) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": request_schema}}}},
            "responses": {"200": _json(response_schema, ok), **_errors(400, 413, *errors, 429, 503)},
        }
    }


def _onboarding_post(summary: str, request_schema: str, response_schema: str, ok: str,
                     refusal: str | None) -> dict[str, Any]:
    """An onboarding endpoint; ``refusal`` describes its one 401 answer (docs/protocol.md §Onboarding)."""
    if refusal is None:
        return _post(summary, request_schema, response_schema, ok)
    doc = _post(summary, request_schema, response_schema, ok, 401, 403)
    doc["post"]["responses"]["401"] = _json("#/components/schemas/Error", refusal)
    doc["post"]["responses"]["403"] = _json("#/components/schemas/Error", "the client principal is disabled")
    return doc


def openapi_document(realm: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tallystick KDC",
            "version": "1",
            "description": f"Key distribution centre of realm {realm}: AS and TGS exchanges (RFC 4120 §3.1, §3.3).",
        },
        "paths": {
            "/v1/as": _post("AS exchange: pre-authenticated request for a ticket-granting ticket",
                            "#/components/schemas/AsRequestBody", "#/components/schemas/AsReplyBody",
                            "the AS reply", 401, 403),
            "/v1/tgs": _post("TGS exchange: a service ticket, or renewal of a ticket-granting ticket",
                             "#/components/schemas/TgsRequestBody", "#/components/schemas/TgsReplyBody",
                             "the TGS reply", 401, 403, 404),
            "/v1/as/params": _post("Argon2id parameters for a password principal (decoys for anyone else)",
                                   "#/components/schemas/ParamsRequest", "#/components/schemas/PasswordParams",
                                   "password-derivation parameters"),
            "/v1/enroll": _onboarding_post(
                "Enrollment: redeem a one-time token; the client's new key, sealed for this device",
                "#/components/schemas/EnrollRequestBody", "#/components/schemas/EnrollReplyBody",
                "the enrollment reply (a keytab sealed under X25519 and the token)",
                "ENROLLMENT_INVALID: the token is unknown, expired, already used or badly proved (one answer)"),
            "/v1/pair/start": _onboarding_post(
                "PIN pairing, round 1: SPAKE2 message A in, message B and a pairing id out (spends one attempt)",
                "#/components/schemas/PairStartBody", "#/components/schemas/PairChallengeBody",
                "the KDC's SPAKE2 message (also, as a decoy, when no pairing is open)", None),
            "/v1/pair/finish": _onboarding_post(
                "PIN pairing, round 2: the device's key confirmation in; the KDC's confirmation and the client's "
                "new key, sealed under the SPAKE2 key, out",
                "#/components/schemas/PairFinishBody", "#/components/schemas/PairReplyBody", "the pairing reply",
                "PAIRING_FAILED: wrong code, no open pairing, pairing closed or attempts spent (one answer)"),
            "/healthz": {"get": {"summary": "liveness", "responses": {
                "200": _json("#/components/schemas/Health", "the process is up")}}},
            "/readyz": {"get": {"summary": "readiness: the store answers", "responses": {
                "200": _json("#/components/schemas/Health", "ready"),
                "503": _json("#/components/schemas/Health", "the store is unavailable")}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {
                "200": {"description": "OpenAPI 3.1 document", "content": {"application/json": {}}}}}},
            **admin_paths(),
        },
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": {
                **admin_schemas(),
                "AsRequestBody": _body("as_req", "encoded AsRequest"),
                "AsReplyBody": _body("as_rep", "encoded AsReply"),
                "TgsRequestBody": _body("tgs_req", "encoded TgsRequest"),
                "TgsReplyBody": _body("tgs_rep", "encoded TgsReply"),
                "EnrollRequestBody": _body("enroll_req", "encoded EnrollRequest"),
                "EnrollReplyBody": _body("enroll_rep", "encoded EnrollReply"),
                "PairStartBody": _body("pair_start", "encoded PairStart"),
                "PairChallengeBody": _body("pair_challenge", "encoded PairChallenge"),
                "PairFinishBody": _body("pair_finish", "encoded PairFinish"),
                "PairReplyBody": _body("pair_rep", "encoded PairReply"),
                "ParamsRequest": {
                    "type": "object", "required": ["principal"],
                    "properties": {"principal": {"type": "string", "examples": [f"bob@{realm}"]}},
                },
                "PasswordParams": {
                    "type": "object", "required": ["kdf", "salt", "iterations", "memory_kib", "lanes"],
                    "properties": {
                        "kdf": {"const": "argon2id"},
                        "salt": _B64URL,
                        "iterations": {"type": "integer", "minimum": 1},
                        "memory_kib": {"type": "integer", "minimum": 8},
                        "lanes": {"type": "integer", "minimum": 1},
                    },
                },
                "Health": {
                    "type": "object", "required": ["status"],
                    "properties": {"status": {"enum": ["ok", "ready", "unavailable"]},
                                   "error": {"const": str(ErrorCode.STORE_UNAVAILABLE)}},
                },
                "Error": {
                    "type": "object", "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "stable error code",
                                  "examples": [str(c) for c in ErrorCode]},
                        "message": {"type": "string", "description": "safe to show; never holds a secret"},
                        "server_time": {"type": "integer", "description": "with CLOCK_SKEW: the KDC's time"},
                        "retry_after": {"type": "integer", "description": "with LOCKED_OUT and RATE_LIMITED"},
                        "limit": {"description": "with RATE_LIMITED: address, as_principal or tgs_principal; "
                                  "with REQUEST_TOO_LARGE: the limit in bytes"},
                        "request_id": {"type": "string", "description": "the id the KDC logged the request "
                                       "under (also in the X-Request-Id response header); quote it"},
                    },
                    "additionalProperties": True,
                },
            }
        },
    }
