"""The KDC's side of revocation: the TGS refuses revoked TGTs; issuance audit events name the ticket."""

from __future__ import annotations

from client_sdk.flow import Credential
from kdc.state import kdc_state
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, AuditCapture, Realm
from tests.kdc.wire import get_ticket, login, send_tgs


def _tgt(realm: Realm) -> Credential:
    return login(realm.http, realm.alice, realm.alice_keys.current.material, now=realm.clock.now)


def _error(response: object) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]  # type: ignore[attr-defined]


def test_a_revoked_principals_tgt_buys_no_service_ticket(realm: Realm) -> None:
    tgt = _tgt(realm)
    kdc_state(realm.app).revocation.revoke_principal(realm.alice)
    _, response = send_tgs(realm.http, tgt, realm.api, now=realm.clock.now)
    assert _error(response) == (401, "TICKET_REVOKED")


def test_a_revoked_tgt_cannot_be_renewed(realm: Realm) -> None:
    tgt = _tgt(realm)
    kdc_state(realm.app).revocation.revoke_principal(realm.alice)
    _, response = send_tgs(realm.http, tgt, Principal.tgs(REALM), now=realm.clock.now, renew=True)
    assert _error(response) == (401, "TICKET_REVOKED")


def test_a_new_login_after_the_revocation_works(realm: Realm) -> None:
    kdc_state(realm.app).revocation.revoke_principal(realm.alice)
    realm.clock.advance(1)
    assert get_ticket(realm.http, _tgt(realm), realm.api, now=realm.clock.now).service == realm.api


def test_revoking_one_tgt_by_id_leaves_other_logins_alone(realm: Realm, audit_events: AuditCapture) -> None:
    first, second = _tgt(realm), _tgt(realm)
    issued = [e for e in audit_events.events if e["event"] == "as.issue"]
    kdc_state(realm.app).revocation.revoke_ticket(bytes.fromhex(issued[0]["ticket_id"]), issued[0]["endtime"])
    _, response = send_tgs(realm.http, first, realm.api, now=realm.clock.now)
    assert _error(response) == (401, "TICKET_REVOKED")
    assert get_ticket(realm.http, second, realm.api, now=realm.clock.now).service == realm.api


def test_issuance_audit_events_name_the_ticket_id_authtime_and_end(realm: Realm, audit_events: AuditCapture) -> None:
    tgt = _tgt(realm)
    ticket = get_ticket(realm.http, tgt, realm.api, now=realm.clock.now)
    as_issue, tgs_issue = (e for e in audit_events.events if e["event"] in ("as.issue", "tgs.issue"))
    assert as_issue["authtime"] == tgs_issue["authtime"] == tgt.authtime
    assert (as_issue["endtime"], tgs_issue["endtime"]) == (tgt.endtime, ticket.endtime)
    assert len(bytes.fromhex(as_issue["ticket_id"])) == 16 and as_issue["ticket_id"] != tgs_issue["ticket_id"]
    assert tgt.session_key.hex() not in "".join(audit_events.lines)


def test_a_refused_revoked_tgt_is_audited(realm: Realm, audit_events: AuditCapture) -> None:
    tgt = _tgt(realm)
    kdc_state(realm.app).revocation.revoke_principal(realm.alice)
    send_tgs(realm.http, tgt, realm.api, now=realm.clock.now)
    refusal = next(e for e in audit_events.events if e["event"] == "tgs.refuse")
    assert (refusal["error"], refusal["principal"]) == ("TICKET_REVOKED", str(realm.alice))
