"""An in-memory realm for protocol tests: fixed clock, deterministic randomness, no I/O.

Builders here make tickets and AP requests straight from the core's
messages, so a test can vary one field (a time, a principal, a key version)
and see exactly which check refuses it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tally_protocol.binding import RequestBinding
from tally_protocol.codes import TicketFlags
from tally_protocol.keys import Key, Keyset
from tally_protocol.messages import ApRequest, Authenticator, EncTicketPart, Ticket
from tally_protocol.principal import Principal
from tally_protocol.verify import SESSION_KVNO

REALM = "EXAMPLE.TEST"
OTHER_REALM = "OTHER.TEST"
#: The fixed "now" of every protocol test (2023-11-14T22:13:20Z).
NOW = 1_700_000_000.0
ALICE = Principal("alice", REALM)
BOB = Principal("bob", REALM)
API = Principal("api", REALM)
TGS = Principal.tgs(REALM)
BINDING = RequestBinding.for_http("GET", "api.example.test", "/whoami?x=1", b"")


class DeterministicRandom:
    """``rng(n)``: SHAKE-256 of a seed and a counter; the same seed gives the same bytes."""

    def __init__(self, seed: bytes = b"tallystick protocol tests") -> None:
        self._seed = seed
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        self._counter += 1
        return hashlib.shake_256(self._seed + self._counter.to_bytes(8, "big")).digest(n)


def key(label: str, kvno: int = 1) -> Key:
    """A fixed 256-bit key named by ``label`` (distinct labels give distinct keys)."""
    return Key(hashlib.sha256(b"tallystick test key " + label.encode()).digest(), kvno)


class SetReplayCache:
    """The ``ReplayCache`` contract in a set (TTL ignored: tests never outlive it)."""

    def __init__(self) -> None:
        self.claimed: set[bytes] = set()

    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool:
        if key in self.claimed:
            return False
        self.claimed.add(key)
        return True


@dataclass(frozen=True)
class Issued:
    """A ticket and the session key the KDC put in it."""

    ticket: Ticket
    session_key: Key
    part: EncTicketPart


def issue_ticket(
    rng: DeterministicRandom,
    service_key: Key,
    *,
    service: Principal = API,
    client: Principal = ALICE,
    start: float = NOW,
    end: float = NOW + 3600,
    flags: TicketFlags = TicketFlags.PRE_AUTHENTICATED,
) -> Issued:
    part = EncTicketPart(flags, rng(32), client, int(start), int(start), int(end), 0, rng(16))
    ticket = Ticket.issue(service, service_key, part, nonce=rng(12))
    return Issued(ticket, Key(part.session_key, SESSION_KVNO), part)


def ap_request(
    rng: DeterministicRandom,
    issued: Issued,
    *,
    binding: RequestBinding = BINDING,
    client: Principal | None = None,
    ctime: float = NOW,
    session_key: Key | None = None,
    nonce: bytes | None = None,
) -> ApRequest:
    auth = Authenticator(client or issued.part.client, int(ctime), nonce or rng(16), binding)
    return ApRequest.create(issued.ticket, session_key or issued.session_key, auth, nonce=rng(12))


def service_keyset(*kvnos: int) -> Keyset:
    """The service ``api``'s key versions (``service_keyset(1, 2)`` after one rotation)."""
    return Keyset(key(f"api v{n}", n) for n in (kvnos or (1,)))
