"""The admin JSON API: ticket authentication for kadmin/admin, roles, mutual authentication, JSON errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import redis
from werkzeug.test import TestResponse

from client_sdk.flow import ApContext, Credential, make_ap_request
from kdc.admin.acl import Actor
from kdc.admin.extension import admin_state
from kdc.admin.interface import LocalAdmin
from kdc.app import create_app
from kdc.master_key import MasterKey
from kdc.principal_db import PrincipalDB
from tally_protocol.binding import RequestBinding
from tally_protocol.encoding import b64decode
from tally_protocol.errors import MutualAuthFailed
from tally_protocol.keytab import load_keytab
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, T0, FixedClock, Realm, settings_for
from tests.kdc.wire import get_ticket, login

ROOT = Actor("local:root", frozenset({"superadmin"}), "local", "cli")
KADMIN = Principal("kadmin/admin", REALM)
ALICE = Principal("alice", REALM)


def root(realm: Realm) -> LocalAdmin:
    return LocalAdmin(admin_state(realm.app).operations, ROOT)


def admin_ticket(realm: Realm, role: str | None = "superadmin", service: Principal = KADMIN) -> Credential:
    if role is not None:
        root(realm).grant(str(ALICE), role)
    tgt = login(realm.http, ALICE, realm.alice_keys.current.material, now=T0)
    return get_ticket(realm.http, tgt, service, now=T0)


def signed(cred: Credential, method: str, path: str, body: bytes = b"") -> tuple[ApContext, dict[str, str]]:
    binding = RequestBinding.for_http(method, "localhost", path, body)
    context = make_ap_request(cred, binding, now=T0, rng=os.urandom)
    headers = {"Authorization": context.authorization}
    if body:
        headers["Content-Type"] = "application/json"
    return context, headers


def call(realm: Realm, cred: Credential, method: str, path: str, body: Any = None) -> TestResponse:
    data = b"" if body is None else json.dumps(body).encode()
    context, headers = signed(cred, method, path, data)
    response = realm.http.open(path, method=method, data=data, headers=headers)
    if "Authentication-Info" in response.headers:
        context.check_reply(response.headers["Authentication-Info"], status=response.status_code,
                            body=response.get_data())
    return response


def test_kdc_start_creates_the_admin_service_principal(admin_realm: Realm) -> None:
    assert admin_realm.db.find(KADMIN) is not None


def test_a_request_without_a_ticket_is_401_with_a_tally_challenge(admin_realm: Realm) -> None:
    response = admin_realm.http.get("/admin/api/v1/whoami")
    assert response.status_code == 401 and response.get_json()["error"] == "AUTHENTICATION_REQUIRED"
    assert response.headers["WWW-Authenticate"].startswith(f'Tally realm="{REALM}"')


def test_a_ticket_for_another_service_is_401(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm, service=admin_realm.api)
    response = call(admin_realm, cred, "GET", "/admin/api/v1/whoami")
    assert response.status_code == 401 and response.get_json()["error"] == "WRONG_SERVICE"


def test_a_replayed_request_is_401(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm)
    _, headers = signed(cred, "GET", "/admin/api/v1/whoami")
    assert admin_realm.http.get("/admin/api/v1/whoami", headers=headers).status_code == 200
    replay = admin_realm.http.get("/admin/api/v1/whoami", headers=headers)
    assert replay.status_code == 401 and replay.get_json()["error"] == "REPLAY_DETECTED"


def test_a_request_altered_after_signing_is_401(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm)
    _, headers = signed(cred, "GET", "/admin/api/v1/principals")
    response = admin_realm.http.delete(f"/admin/api/v1/principals/{ALICE}", headers=headers)
    assert response.status_code == 401 and response.get_json()["error"] == "BINDING_MISMATCH"
    assert admin_realm.db.find(ALICE) is not None


def test_a_valid_ticket_without_the_role_is_403_and_still_proves_the_kdc(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm, role="viewer")
    response = call(admin_realm, cred, "DELETE", f"/admin/api/v1/principals/{admin_realm.api}")
    assert response.status_code == 403 and response.get_json()["error"] == "PERMISSION_DENIED"
    assert "Authentication-Info" in response.headers  # checked by call()
    assert admin_realm.db.find(admin_realm.api) is not None


def test_a_principal_with_no_role_at_all_is_403(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm, role=None)
    assert call(admin_realm, cred, "GET", "/admin/api/v1/principals").status_code == 403


def test_success_carries_mutual_authentication_bound_to_the_body(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm)
    response = call(admin_realm, cred, "GET", "/admin/api/v1/whoami")
    assert response.status_code == 200 and response.get_json()["name"] == str(ALICE)
    assert response.headers["Cache-Control"] == "no-store"
    context, _ = signed(cred, "GET", "/admin/api/v1/whoami")
    with pytest.raises(MutualAuthFailed):  # the proof of another request never checks out
        context.check_reply(response.headers["Authentication-Info"], status=200, body=response.get_data())


def test_principal_names_with_slashes_work_in_paths(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm)
    created = call(admin_realm, cred, "POST", "/admin/api/v1/principals", {"name": "host/web", "kind": "service"})
    assert created.status_code == 201
    shown = call(admin_realm, cred, "GET", "/admin/api/v1/principals/host/web")
    assert shown.get_json()["name"] == f"host/web@{REALM}"
    disabled = call(admin_realm, cred, "POST", "/admin/api/v1/principals/host/web/disable")
    assert disabled.get_json()["status"] == "disabled"


def test_a_created_service_comes_with_its_keytab_once(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm)
    created = call(admin_realm, cred, "POST", "/admin/api/v1/principals", {"name": "web", "kind": "service"})
    principal, keyset = load_keytab(b64decode(created.get_json()["keytab"]))
    assert principal == Principal("web", REALM) and keyset.versions == [1]
    assert "keytab" not in call(admin_realm, cred, "GET", "/admin/api/v1/principals/web").get_json()


def test_keytab_download_is_octet_stream_with_extract_keys(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm, role="key-custodian")
    response = call(admin_realm, cred, "POST", f"/admin/api/v1/principals/{admin_realm.api}/keytab")
    assert response.status_code == 200 and response.mimetype == "application/octet-stream"
    principal, keyset = load_keytab(response.get_data())
    assert principal == admin_realm.api and keyset.current.material == admin_realm.api_keys.current.material


@pytest.mark.parametrize("name", ["kadmin/admin", f"krbtgt/{REALM}"])
def test_ticket_granting_and_admin_keys_are_never_downloadable(admin_realm: Realm, name: str) -> None:
    cred = admin_ticket(admin_realm)
    response = call(admin_realm, cred, "POST", f"/admin/api/v1/principals/{name}/keytab")
    assert response.status_code == 403 and "never leave the KDC" in response.get_json()["message"]


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/admin/api/v1/principals", {"name": "x"}, 400),
    ("POST", "/admin/api/v1/principals", {"name": "bad name!", "kind": "client"}, 400),
    ("POST", "/admin/api/v1/principals", ["not", "an", "object"], 400),
    ("GET", "/admin/api/v1/principals?limit=lots", None, 400),
    ("GET", "/admin/api/v1/principals/ghost", None, 404),
    ("GET", "/admin/api/v1/no-such-thing", None, 404),
    ("PATCH", "/admin/api/v1/principals", None, 405),
    ("PUT", "/admin/api/v1/policies/default", {"tgt_lifetime_s": 1}, 400),
    ("GET", "/admin/api/v1/audit?cursor=nope", None, 400),
    ("POST", "/admin/api/v1/principals", {"name": "alice", "kind": "client"}, 409),
])
def test_bad_requests_get_json_4xx_errors(admin_realm: Realm, method: str, path: str, body: Any,
                                          status: int) -> None:
    cred = admin_ticket(admin_realm)
    response = call(admin_realm, cred, method, path, body)
    assert response.status_code == status
    assert set(response.get_json()) >= {"error", "message"}


def test_the_audit_log_is_served_filtered_and_paged(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm)
    for name in ("a1", "a2", "a3"):
        call(admin_realm, cred, "POST", "/admin/api/v1/principals", {"name": name, "kind": "client"})
    first = call(admin_realm, cred, "GET", "/admin/api/v1/audit?event=admin.principal.add&limit=2").get_json()
    assert [e["target"] for e in first["events"]] == [f"a3@{REALM}", f"a2@{REALM}"]
    second = call(admin_realm, cred, "GET",
                  f"/admin/api/v1/audit?event=admin.principal.add&limit=2&cursor={first['next_cursor']}").get_json()
    assert [e["target"] for e in second["events"]][:1] == [f"a1@{REALM}"]


def test_kdc_issuance_events_reach_the_audit_stream(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm)
    page = call(admin_realm, cred, "GET", "/admin/api/v1/audit?principal=alice&event=tgs.").get_json()
    assert page["events"][0]["service"] == str(KADMIN) and page["events"][0]["outcome"] == "success"


def test_every_admin_route_is_in_the_openapi_document(admin_realm: Realm) -> None:
    doc = admin_realm.http.get("/openapi.json").get_json()
    routes = [r for r in admin_realm.app.url_map.iter_rules() if r.rule.startswith("/admin/api/v1/")]
    assert len(routes) > 20
    for rule in routes:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in doc["paths"], path
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"][path], (method, path)


def test_onboarding_codes_are_shown_once_and_never_listed(admin_realm: Realm) -> None:
    cred = admin_ticket(admin_realm)
    token = call(admin_realm, cred, "POST", f"/admin/api/v1/principals/{ALICE}/enrollment", {"ttl_s": 60})
    pairing = call(admin_realm, cred, "POST", f"/admin/api/v1/principals/{ALICE}/pairing", {"attempts": 3})
    assert token.status_code == pairing.status_code == 201
    secret_token, code = token.get_json()["token"], pairing.get_json()["code"]
    listing = call(admin_realm, cred, "GET", "/admin/api/v1/onboarding")
    assert listing.get_json()["pairings"][0]["attempts_left"] == 3
    assert len(listing.get_json()["enrollments"]) == 1
    assert secret_token not in listing.get_data(as_text=True) and code not in listing.get_data(as_text=True)
    closed = call(admin_realm, cred, "POST", f"/admin/api/v1/principals/{ALICE}/pairing/close")
    assert closed.get_json()["closed"] is True



def test_a_kdc_started_with_another_realms_master_key_creates_no_admin_service(
        fake_redis: redis.Redis, clock: FixedClock, tmp_path: Path) -> None:
    right = MasterKey.generate()
    db = PrincipalDB(fake_redis, REALM, right, clock)
    db.init_realm()
    create_app({"TESTING": True}, settings=settings_for(tmp_path), redis_client=fake_redis,
               master_key=MasterKey.generate(), clock=clock)
    assert db.find(KADMIN) is None
    create_app({"TESTING": True}, settings=settings_for(tmp_path), redis_client=fake_redis,
               master_key=right, clock=clock)
    assert db.find(KADMIN) is not None
