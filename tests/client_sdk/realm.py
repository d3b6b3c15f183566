"""An in-process realm for client SDK tests: the real KDC exchanges and verifier behind mocked HTTP.

No fake protocol: ``Realm.kdc`` runs ``kdc.exchange`` (check_preauth,
issue_tgt, check_tgs_request, issue_service_ticket) and ``Realm.serve`` runs
``tally_protocol.verify`` with a replay cache, exactly as the real KDC and a
relying service do.  Only HTTP is simulated: ``install_responses`` puts the
realm behind ``responses`` (for ``requests``), ``httpx_transport`` behind an
``httpx.MockTransport``.  Time is a ``FakeClock`` the test advances; the KDC
and the service can be told to run ahead of or behind it.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
import responses

from client_sdk.flow import Credential, finish_as_exchange, start_as_exchange
from kdc.exchange import TicketPolicy, check_preauth, check_tgs_request, issue_service_ticket, issue_tgt
from tally_protocol.binding import RequestBinding, canonical_host_header
from tally_protocol.codes import TgsOptions
from tally_protocol.crypto import derive_password_key
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import StoreUnavailable, TallyError, UnknownService
from tally_protocol.keys import Key, Keyset, PasswordParams
from tally_protocol.messages import AsRequest, TgsRequest, parse_authorization
from tally_protocol.principal import Principal
from tally_protocol.replay import claim_or_reject
from tally_protocol.verify import VerifyPolicy, make_ap_reply, verify_ap_request
from tally_runtime.keytab_file import write_keytab
from tally_runtime.replay_cache import InMemoryReplayCache

REALM = "EXAMPLE.TEST"
KDC_URL = "http://127.0.0.1:8750"
SERVICE_URL = "http://127.0.0.1:8751"
#: 2023-11-14T22:13:20Z
START = 1_700_000_000.0
ALICE = Principal("alice", REALM)
BOB = Principal("bob", REALM)
API = Principal("api", REALM)
TGS = Principal.tgs(REALM)
BOB_PASSWORD = "correct horse battery staple"
#: Cheap Argon2id costs so password tests stay fast (still inside PasswordParams' bounds).
CHEAP_PARAMS = PasswordParams(salt=b"bob's salt 16 b.", iterations=1, memory_kib=64, lanes=1)

JSON = {"Content-Type": "application/json"}
Answer = tuple[int, dict[str, str], bytes]


class FakeClock:
    """``clock()`` returns ``now``; tests move it with ``advance``."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _error(err: TallyError, *, challenge: bool = False, retry_after: int = 1) -> Answer:
    """What ``tally_runtime.http_errors.error_response`` sends, without Flask."""
    headers = dict(JSON)
    if err.status_hint in (429, 503):
        headers["Retry-After"] = str(err.data.get("retry_after", retry_after))
    if challenge and err.status_hint == 401:
        headers["WWW-Authenticate"] = f'Tally realm="{REALM}", error="{err.code}"'
    return err.status_hint, headers, json.dumps(err.to_dict()).encode()


@dataclass
class Realm:
    clock: FakeClock
    policy: TicketPolicy = field(default_factory=TicketPolicy)
    verify: VerifyPolicy = field(default_factory=VerifyPolicy)
    tgs_keys: Keyset = field(default_factory=lambda: Keyset([Key(os.urandom(32), 1)]))
    client_keys: dict[Principal, Key] = field(default_factory=dict)
    password_params: dict[Principal, PasswordParams] = field(default_factory=dict)
    service_keys: dict[Principal, Keyset] = field(default_factory=dict)
    #: Requests counted by kind: "as", "tgs", "renew", "params", "service".
    calls: Counter[str] = field(default_factory=Counter)
    #: KDC clock minus the realm clock.
    kdc_offset: float = 0.0
    #: Service clock minus the realm clock, per service request (the last one repeats).
    service_offsets: list[float] = field(default_factory=lambda: [0.0])
    #: Misbehaviours of the service.
    drop_proof: bool = False
    alter_body: bool = False
    store_down: bool = False
    #: The Retry-After of the service's store outage (longer than a client waits by default).
    store_retry_after: int = 30
    #: Bindings the service computed for requests it accepted.
    accepted: list[RequestBinding] = field(default_factory=list)
    #: Refusals the KDC / the service answer the next requests with, before anything else (first first).
    kdc_refusals: list[TallyError] = field(default_factory=list)
    service_refusals: list[TallyError] = field(default_factory=list)
    #: (path, X-Request-Id) of every request that reached the KDC or the service, in order.
    request_ids: list[tuple[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Long-running KDC and service: born well before any authenticator in the tests.
        self.kdc_replay = InMemoryReplayCache(self.clock, birth=0)
        self.service_replay = InMemoryReplayCache(self.clock, birth=0)
        self.client_keys.setdefault(ALICE, Key(os.urandom(32), 1))
        self.service_keys.setdefault(API, Keyset([Key(os.urandom(32), 1)]))
        self.password_params.setdefault(BOB, CHEAP_PARAMS)
        self.client_keys.setdefault(BOB, Key(derive_password_key(BOB_PASSWORD, CHEAP_PARAMS), 1))

    def write_key_file(self, path: Path, principal: Principal = ALICE) -> Path:
        return write_keytab(path, principal, Keyset([self.client_keys[principal]]))

    # -- KDC ---------------------------------------------------------------------

    def kdc_now(self) -> float:
        return self.clock() + self.kdc_offset

    def kdc_as(self, as_req_bytes: bytes) -> bytes:
        as_req = AsRequest.from_bytes(as_req_bytes)
        known = self.client_keys.get(as_req.client)
        # Unknown names get a decoy key: they fail exactly like a wrong key.
        client_key = Key(known.material if known else os.urandom(32), 0)
        now = self.kdc_now()
        checked = check_preauth(as_req, client_key, now=now, verify=self.verify)
        claim_or_reject(self.kdc_replay, checked.replay_key, checked.replay_ttl_ms, ctime=checked.ctime,
                        max_skew_s=self.verify.max_skew_s)
        reply = issue_tgt(checked, as_req_bytes, client_key=client_key, tgs_key=self.tgs_keys.current,
                          policy=self.policy, now=now, rng=os.urandom).reply
        return reply.to_bytes()

    def kdc_tgs(self, tgs_req_bytes: bytes) -> bytes:
        tgs_req = TgsRequest.from_bytes(tgs_req_bytes)
        now = self.kdc_now()
        verified, body = check_tgs_request(tgs_req, realm=REALM, tgs_keys=self.tgs_keys, now=now, verify=self.verify)
        claim_or_reject(self.kdc_replay, verified.replay_key, verified.replay_ttl_ms,
                        ctime=verified.authenticator.ctime, max_skew_s=self.verify.max_skew_s)
        if body.options & TgsOptions.RENEW:
            self.calls["renew"] += 1
            service_key = self.tgs_keys.current
        else:
            keys = self.service_keys.get(body.service)
            if keys is None:
                raise UnknownService()
            service_key = keys.current
        reply = issue_service_ticket(verified, body, service_key=service_key, policy=self.policy, now=now,
                                     rng=os.urandom).reply
        return reply.to_bytes()

    def kdc(self, path: str, body: bytes) -> Answer:
        """The KDC's HTTP API per the wire contract."""
        if self.kdc_refusals:
            return _error(self.kdc_refusals.pop(0))
        try:
            doc = json.loads(body)
            if path == "/v1/as":
                self.calls["as"] += 1
                return 200, JSON, json.dumps({"as_rep": b64encode(self.kdc_as(b64decode(doc["as_req"])))}).encode()
            if path == "/v1/tgs":
                self.calls["tgs"] += 1
                return 200, JSON, json.dumps({"tgs_rep": b64encode(self.kdc_tgs(b64decode(doc["tgs_req"])))}).encode()
            if path == "/v1/as/params":
                self.calls["params"] += 1
                name = Principal.parse(doc["principal"])
                params = self.password_params.get(name, PasswordParams(salt=b"decoy salt 16 b."))
                return 200, JSON, json.dumps(params.to_dict()).encode()
        except TallyError as err:
            return _error(err)
        return 404, JSON, b'{"error": "HTTP_404", "message": "not found"}'

    # -- relying service -----------------------------------------------------------

    def service_now(self) -> float:
        index = min(self.calls["service"], len(self.service_offsets)) - 1
        return self.clock() + self.service_offsets[index]

    def serve(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """The demo relying service: verify, claim the replay key, answer with a proof."""
        self.calls["service"] += 1
        parts = urlsplit(url)
        self.request_ids.append((parts.path, headers.get("X-Request-Id")))
        if self.service_refusals:
            return _error(self.service_refusals.pop(0), challenge=True)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        host = canonical_host_header(headers.get("Host") or parts.netloc, parts.scheme)
        binding = RequestBinding.for_http(method, host, path, body)
        try:
            if self.store_down:
                return _error(StoreUnavailable(), retry_after=self.store_retry_after)  # Retry-After header only, as http_errors does
            verified = verify_ap_request(
                parse_authorization(headers.get("Authorization")), service=API, keyset=self.service_keys[API],
                binding=binding, now=self.service_now(), policy=self.verify,
            )
            claim_or_reject(self.service_replay, verified.replay_key, verified.replay_ttl_ms,
                            ctime=verified.authenticator.ctime, max_skew_s=self.verify.max_skew_s)
        except TallyError as err:
            return _error(err, challenge=True)
        self.accepted.append(binding)
        status, answer_headers, answer = self._route(method, parts.path, headers, body, verified.client)
        proof = make_ap_reply(verified, status=status, body=answer, nonce=os.urandom(12))
        if not self.drop_proof:
            answer_headers["Authentication-Info"] = proof
        if self.alter_body:
            answer = answer.replace(b"alice", b"mallory")
        return status, answer_headers, answer

    @staticmethod
    def _route(method: str, path: str, headers: Mapping[str, str], body: bytes, client: Principal) -> Answer:
        if method == "GET" and path == "/whoami":
            return 200, dict(JSON), json.dumps({"principal": str(client)}).encode()
        if method == "POST" and path == "/echo":
            return 200, {"Content-Type": headers.get("Content-Type", "application/octet-stream")}, body
        if path == "/moved":
            return 302, {"Location": f"{SERVICE_URL}/whoami"}, b""
        return 404, dict(JSON), b'{"error": "HTTP_404", "message": "no such page"}'

    def login_directly(self, principal: Principal = ALICE) -> Credential:
        """A TGT straight from the exchanges, no HTTP (for cache tests)."""
        pending = start_as_exchange(principal, Key(self.client_keys[principal].material, 0),
                                    now=self.clock(), rng=os.urandom)
        return finish_as_exchange(pending, self.kdc_as(pending.request_bytes))


def install_responses(rsps: responses.RequestsMock, realm: Realm) -> None:
    """Put the realm's KDC and service behind ``responses`` (what ``requests`` talks to)."""

    def body_of(request: requests.PreparedRequest) -> bytes:
        body: Any = request.body
        return body.encode() if isinstance(body, str) else bytes(body or b"")

    def kdc_endpoint(path: str) -> Callable[[requests.PreparedRequest], Answer]:
        def answer(request: requests.PreparedRequest) -> Answer:
            realm.request_ids.append((path, request.headers.get("X-Request-Id")))
            return realm.kdc(path, body_of(request))
        return answer

    for path in ("/v1/as", "/v1/tgs", "/v1/as/params"):
        rsps.add_callback(responses.POST, KDC_URL + path, callback=kdc_endpoint(path))
    service = re.compile(re.escape(SERVICE_URL) + r"/.*")
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        rsps.add_callback(method, service, callback=lambda request: realm.serve(
            request.method or "", request.url or "", request.headers, body_of(request)))


def httpx_transport(realm: Realm) -> httpx.MockTransport:
    """The realm's service behind an httpx transport (sync and async)."""

    def handle(request: httpx.Request) -> httpx.Response:
        status, headers, body = realm.serve(request.method, str(request.url), request.headers, request.read())
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handle)
