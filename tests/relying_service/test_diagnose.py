"""``relying_service.diagnosis``: every check reported, causes and fixes named, nothing secret shown."""

from __future__ import annotations

import json
from dataclasses import replace

import fakeredis
from hypothesis import given
from hypothesis import strategies as st

from client_sdk.flow import Credential
from relying_service.diagnosis import ClientView, Clocks, Diagnosis, ServiceView, Status, diagnose
from relying_service.request_rewrites import SeenRequest, compare, remedies
from tally_protocol.binding import RequestBinding
from tally_protocol.encoding import b64encode
from tally_protocol.keys import Keyset
from tally_protocol.messages import parse_authorization
from tally_protocol.principal import Principal
from tally_protocol.verify import verify_ap_request
from tally_runtime.replay_cache import RedisReplayCache
from tests.relying_service.memory_realm import HOST, NOW, REALM, MemoryRealm, new_key

SEEN = SeenRequest.create(method="GET", url=f"https://{HOST}/whoami", body=b"")


def service_view(realm: MemoryRealm) -> ServiceView:
    return ServiceView(realm.service, realm.service_keys)


def failed(d: Diagnosis) -> list[str]:
    return [c.name for c in d.checks if c.status is Status.FAIL]


def test_a_good_header_passes_every_check_and_the_verifier_agrees(realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred).authorization
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW), seen=SEEN)
    assert d.ok and d.verdict is None
    assert d.check("binding").status is Status.PASS
    assert "protocol version 1" in d.check("header").summary


def test_clock_skew_reports_both_clocks_the_window_and_the_ntp_fix(realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred, now=NOW - 900).authorization  # the client's clock is 15 minutes slow
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW + 5, server=NOW), seen=SEEN)
    skew = d.check("clock_skew")
    assert failed(d) == ["clock_skew"] and d.verdict == "CLOCK_SKEW"
    assert "CLOCK_SKEW" in skew.summary and "15 min 0 s behind" in skew.summary and "±300 s" in skew.summary
    assert skew.details["local_minus_t"] == 905 and skew.details["server_minus_t"] == 900
    assert skew.fix is not None and "the client's clock is off" in skew.fix and "NTP" in skew.fix


def test_clock_skew_blames_the_service_when_this_machine_agrees_with_the_client(
        realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred).authorization
    d = diagnose(header, ServiceView(realm.service, realm.service_keys), clocks=Clocks(NOW, server=NOW + 1000))
    fix = d.check("clock_skew").fix
    assert fix is not None and "the service's clock is off" in fix


def test_key_version_drift_names_both_versions_and_says_export_the_keytab_again(realm: MemoryRealm) -> None:
    cred = realm.forge_ticket(key=new_key(3))
    header = realm.authorize(cred).authorization
    keytab = ServiceView(realm.service, Keyset([new_key(1), new_key(2)]))
    d = diagnose(header, keytab, clocks=Clocks(NOW), seen=SEEN)
    check = d.check("key_version")
    assert failed(d) == ["key_version"] and d.verdict == "UNKNOWN_KEY_VERSION"
    assert "the ticket is sealed under kvno 3; this keytab holds 1, 2" in check.summary
    assert check.fix is not None and "export it again" in check.fix and "reload the service" in check.fix


def test_a_key_version_purged_from_the_keytab_asks_for_a_new_ticket(realm: MemoryRealm) -> None:
    header = realm.authorize(realm.forge_ticket(key=new_key(1))).authorization
    d = diagnose(header, ServiceView(realm.service, Keyset([new_key(2)])), clocks=Clocks(NOW))
    fix = d.check("key_version").fix
    assert fix is not None and "new ticket" in fix


def test_a_keytab_with_another_key_under_the_same_version_fails_the_ticket_check(realm: MemoryRealm,
                                                                                   cred: Credential) -> None:
    header = realm.authorize(cred).authorization
    d = diagnose(header, ServiceView(realm.service, Keyset([new_key(1)])), clocks=Clocks(NOW))
    assert failed(d) == ["ticket"] and "export it again" in (d.check("ticket").fix or "")


def test_a_proxy_adding_the_https_port_is_named_with_the_public_url_fix(realm: MemoryRealm,
                                                                       cred: Credential) -> None:
    header = realm.authorize(cred).authorization
    seen = SeenRequest.create(method="GET", host=f"{HOST}:443", path="/whoami", scheme="http", body=b"")
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW), seen=seen)
    check = d.check("binding")
    assert failed(d) == ["binding"] and d.verdict == "BINDING_MISMATCH"
    assert f"client bound '{HOST}', service saw '{HOST}:443'" in check.summary
    assert "http<->https default port" in check.summary
    assert check.fix is not None and f"TALLY_PUBLIC_URL=https://{HOST}" in check.fix
    assert "TALLY_TRUST_FORWARDED=1" in check.fix


def test_a_proxy_forwarding_to_the_upstream_address_is_named(realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred).authorization
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW),
                 seen=SeenRequest.create(url="http://127.0.0.1:8751/whoami"))
    check = d.check("binding")
    assert "another host name" in check.summary and "TALLY_PUBLIC_URL" in (check.fix or "")


def test_a_stripped_prefix_is_named_with_the_public_url_path_fix(realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred, path="/api/whoami").authorization
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW),
                 seen=SeenRequest.create(method="GET", url=f"https://{HOST}/whoami", body=b""))
    check = d.check("binding")
    assert "strips the prefix '/api'" in check.summary
    assert f"TALLY_PUBLIC_URL=https://{HOST}/api on the service" in (check.fix or "")


def test_a_re_encoded_path_is_named(realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred, path="/files/a%7Eb").authorization
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW),
                 seen=SeenRequest.create(path="/files/a~b"))
    assert "percent-encoded differently" in d.check("binding").summary


def test_a_changed_body_is_compared_by_digest(realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred, "POST", "/echo", b"hello").authorization
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW), seen=SeenRequest.create(body=b"hell"))
    assert failed(d) == ["binding"] and d.check("binding").summary.startswith("BINDING_MISMATCH: body:")


def test_without_the_seen_request_the_bound_request_is_shown_and_not_judged(realm: MemoryRealm,
                                                                           cred: Credential) -> None:
    header = realm.authorize(cred, "POST", "/echo", b"x").authorization
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW))
    check = d.check("binding")
    assert d.ok and check.status is Status.SKIP and f"POST {HOST}/echo" in check.summary


def test_a_ticket_for_another_service_is_wrong_service(realm: MemoryRealm) -> None:
    cred = realm.forge_ticket(service=Principal("files", REALM))
    d = diagnose(realm.authorize(cred).authorization, service_view(realm), clocks=Clocks(NOW), seen=SEEN)
    check = d.check("service")
    assert failed(d) == ["service"] and d.verdict == "WRONG_SERVICE"
    assert f"WRONG_SERVICE: the ticket is for files@{REALM}, this keytab is api@{REALM}" == check.summary
    assert d.check("clock_skew").status is Status.SKIP


def test_a_ticket_from_another_realm_is_wrong_realm(realm: MemoryRealm) -> None:
    cred = realm.forge_ticket(service=Principal("api", "OTHER.TEST"))
    d = diagnose(realm.authorize(cred).authorization, service_view(realm), clocks=Clocks(NOW))
    assert d.check("service").details["code"] == "WRONG_REALM"


def test_an_expired_ticket_says_since_when_and_to_get_a_new_one(realm: MemoryRealm) -> None:
    cred = realm.forge_ticket(endtime=NOW + 3600)
    later = NOW + 3700
    header = realm.authorize(cred, now=later).authorization
    d = diagnose(header, service_view(realm), clocks=Clocks(later), seen=SEEN)
    check = d.check("ticket_times")
    assert failed(d) == ["ticket_times"] and d.verdict == "TICKET_EXPIRED"
    assert "TICKET_EXPIRED" in check.summary and "expired 100 s ago" in check.summary
    assert "new ticket" in (check.fix or "")


def test_a_garbage_header_is_one_failed_check() -> None:
    d = diagnose("Tally !!!not-base64", ClientView([]), clocks=Clocks(NOW))
    assert [c.name for c in d.checks] == ["header"] and not d.ok
    assert "does not decode" in d.checks[0].summary


def test_the_client_view_opens_the_authenticator_with_the_cached_session_key(realm: MemoryRealm,
                                                                            cred: Credential) -> None:
    header = realm.authorize(cred, now=NOW - 600).authorization
    d = diagnose(header, ClientView([realm.login(), cred]), clocks=Clocks(NOW, server=NOW), seen=SEEN)
    assert d.view == "client" and failed(d) == ["clock_skew"]
    assert d.check("binding").status is Status.PASS and d.verdict is None


def test_the_client_view_without_the_ticket_says_which_cache_to_use(realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred).authorization
    d = diagnose(header, ClientView([realm.service_ticket()]), clocks=Clocks(NOW))
    check = d.check("credential")
    assert failed(d) == ["credential"] and "renewed since the capture" in check.summary


def test_the_report_never_holds_the_session_key_or_the_sealed_ticket(realm: MemoryRealm, cred: Credential) -> None:
    header = realm.authorize(cred).authorization
    for view in (service_view(realm), ClientView([cred])):
        text = json.dumps(diagnose(header, view, clocks=Clocks(NOW), seen=SEEN).to_dict())
        for secret in (cred.session_key, cred.ticket.enc_part, realm.service_keys.current.material):
            assert secret.hex() not in text and b64encode(secret) not in text
        assert header.split()[1] not in text


def test_a_ticket_from_the_future_names_the_kdc_clock(realm: MemoryRealm) -> None:
    cred = realm.forge_ticket(starttime=NOW + 3600, endtime=NOW + 7200)
    d = diagnose(realm.authorize(cred).authorization, service_view(realm), clocks=Clocks(NOW), seen=SEEN)
    check = d.check("ticket_times")
    assert failed(d) == ["ticket_times"] and d.verdict == "TICKET_NOT_YET_VALID"
    assert "60 min 0 s after now" in check.summary and "KDC's clock is ahead" in (check.fix or "")


_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)


@given(method=st.sampled_from(["GET", "POST", "PUT"]), host=_text, path=_text, body=st.binary(max_size=32),
       component=st.sampled_from(RequestBinding.COMPONENTS))
def test_exactly_the_changed_component_is_reported(method: str, host: str, path: str, body: bytes,
                                                   component: str) -> None:
    bound = RequestBinding.for_http(method, host, "/" + path, body)
    same = SeenRequest(bound.method, bound.host, bound.path, bound.body)
    assert compare(bound, same) == []
    if component == "method":
        seen = replace(same, method="DELETE")
    elif component == "host":
        seen = replace(same, host=bound.host + "x")
    elif component == "path":
        seen = replace(same, path=bound.path + "x")
    else:
        seen = replace(same, body_sha256=bytes(32) if bound.body != bytes(32) else bytes([1]) * 32)
    differences = compare(bound, seen)
    assert [d.component for d in differences] == [component]
    assert remedies(bound, seen, differences)


def test_a_used_header_is_found_in_the_replay_cache_by_a_lookup_that_claims_nothing(realm: MemoryRealm,
                                                                                    cred: Credential) -> None:
    client = fakeredis.FakeRedis()
    cache = RedisReplayCache(client, clock=lambda: NOW)
    header = realm.authorize(cred).authorization

    assert diagnose(header, service_view(realm), clocks=Clocks(NOW), replay_seen=cache.holds).check("replay").status \
        is Status.PASS
    assert client.dbsize() == 0  # looked up, never claimed
    verified = verify_ap_request(parse_authorization(header), service=realm.service, keyset=realm.service_keys,
                                 binding=SEEN.binding(), now=NOW)
    cache.seed()
    assert cache.claim(verified.replay_key, verified.replay_ttl_ms, ctime=verified.authenticator.ctime,
                       max_skew_s=300)
    d = diagnose(header, service_view(realm), clocks=Clocks(NOW), replay_seen=cache.holds)
    assert failed(d) == ["replay"] and "fresh header" in (d.check("replay").fix or "")
