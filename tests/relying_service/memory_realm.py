"""An in-memory realm: client flow <-> KDC exchange <-> service tickets, no HTTP, fixed clock.

Tickets come from the real pure functions (``client_sdk.flow`` and
``kdc.exchange``); ``forge_ticket`` makes the odd ones a KDC would refuse to
issue (other realms, chosen lifetimes, chosen key versions) directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_sdk.flow import (
    ApContext,
    Credential,
    finish_as_exchange,
    finish_tgs_exchange,
    make_ap_request,
    start_as_exchange,
    start_tgs_exchange,
)
from kdc.exchange import TicketPolicy, check_preauth, check_tgs_request, issue_service_ticket, issue_tgt
from tally_protocol.binding import RequestBinding
from tally_protocol.codes import TicketFlags
from tally_protocol.keys import KEY_SIZE, Key, Keyset
from tally_protocol.messages import EncTicketPart, TgsRequest, Ticket
from tally_protocol.messages.ticket import TICKET_ID_SIZE
from tally_protocol.principal import Principal
from tally_protocol.verify import VerifyPolicy

if TYPE_CHECKING:
    from relying_service.verifier import Verifier

REALM = "EXAMPLE.TEST"
HOST = "api.example.test"
#: The fixed "now" of every test (2023-11-14T22:13:20Z).
NOW = 1_700_000_000.0

#: The ``make_verifier`` fixture: ``(cache=None, *, keyset=None, now=NOW) -> Verifier``.
MakeVerifier = Callable[..., "Verifier"]


class Clock:
    """A clock the test sets: ``clock.now`` (``NOW`` at first)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def whoami() -> RequestBinding:
    """The request most tests send: ``GET /whoami`` to ``HOST``."""
    return RequestBinding.for_http("GET", HOST, "/whoami", b"")


def new_key(kvno: int) -> Key:
    return Key(os.urandom(KEY_SIZE), kvno)


@dataclass
class MemoryRealm:
    realm: str
    tgs_keys: Keyset
    client: Principal
    client_material: bytes
    service: Principal
    service_keys: Keyset

    @classmethod
    def create(cls, realm: str = REALM) -> MemoryRealm:
        return cls(
            realm=realm,
            tgs_keys=Keyset([new_key(1)]),
            client=Principal("alice", realm),
            client_material=os.urandom(KEY_SIZE),
            service=Principal("api", realm),
            service_keys=Keyset([new_key(1)]),
        )

    def login(self, now: float = NOW) -> Credential:
        """The AS exchange: a ticket-granting ticket for alice."""
        client_key = Key(self.client_material, 0)  # "the principal's current key"
        pending = start_as_exchange(self.client, client_key, now=now, rng=os.urandom)
        checked = check_preauth(pending.request, client_key, now=now, verify=VerifyPolicy())
        reply = issue_tgt(checked, pending.request_bytes, client_key=client_key, tgs_key=self.tgs_keys.current,
                          policy=TicketPolicy(), now=now, rng=os.urandom).reply
        return finish_as_exchange(pending, reply.to_bytes())

    def service_ticket(self, now: float = NOW, *, service_key: Key | None = None) -> Credential:
        """The TGS exchange: a ticket for the service, under its current key unless told otherwise."""
        pending = start_tgs_exchange(self.login(now), self.service, now=now, rng=os.urandom)
        verified, body = check_tgs_request(TgsRequest.from_bytes(pending.request_bytes), realm=self.realm,
                                           tgs_keys=self.tgs_keys, now=now, verify=VerifyPolicy())
        reply = issue_service_ticket(verified, body, service_key=service_key or self.service_keys.current,
                                     policy=TicketPolicy(), now=now, rng=os.urandom).reply
        return finish_tgs_exchange(pending, reply.to_bytes())

    def forge_ticket(self, *, service: Principal | None = None, key: Key | None = None,
                     starttime: float = NOW, endtime: float = NOW + 3600) -> Credential:
        """A ticket sealed directly (no KDC) for the cases a KDC would not issue."""
        service = service or self.service
        session_key = os.urandom(KEY_SIZE)
        start, end = int(starttime), int(endtime)
        flags = TicketFlags.PRE_AUTHENTICATED
        part = EncTicketPart(flags, session_key, self.client, start, start, end, 0, os.urandom(TICKET_ID_SIZE))
        ticket = Ticket.issue(service, key or self.service_keys.current, part, nonce=os.urandom(12))
        return Credential(self.client, service, ticket, session_key, flags, start, start, end, 0)

    @staticmethod
    def authorize(cred: Credential, method: str = "GET", path: str = "/whoami", body: bytes = b"",
                  *, host: str = HOST, now: float = NOW) -> ApContext:
        """What the client sends (``ctx.authorization``) and keeps to check the reply."""
        return make_ap_request(cred, RequestBinding.for_http(method, host, path, body), now=now, rng=os.urandom)
