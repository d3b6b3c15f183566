"""``TicketCache``: an opened ticket is reused only while it would open the same way, and never past its end.

Every test warms the cache with a genuine request first, then shows the next
request still gets exactly the answer the uncached path gives.
"""

from __future__ import annotations

import pytest

from tally_protocol.binding import RequestBinding
from tally_protocol.errors import (
    BindingMismatch,
    ClockSkew,
    IntegrityError,
    TicketExpired,
    UnknownKeyVersion,
)
from tally_protocol.keys import Keyset
from tally_protocol.messages import ApRequest, Ticket
from tally_protocol.ticket_cache import OpenedTicket, TicketCache
from tally_protocol.verify import Verified, VerifyPolicy, verify_ap_request

from .realm import API, BINDING, NOW, DeterministicRandom, Issued, ap_request, issue_ticket, key, service_keyset

SKEW = VerifyPolicy().max_skew_s
END = NOW + 3600


@pytest.fixture
def rng() -> DeterministicRandom:
    return DeterministicRandom(b"ticket cache")


@pytest.fixture
def keyset() -> Keyset:
    return service_keyset(1, 2)


@pytest.fixture
def issued(rng: DeterministicRandom, keyset: Keyset) -> Issued:
    return issue_ticket(rng, keyset.get(1), end=END)


def verify(ap_req: ApRequest, keyset: Keyset, tickets: TicketCache, now: float = NOW) -> Verified:
    return verify_ap_request(ap_req, service=API, keyset=keyset, binding=BINDING, now=now, tickets=tickets)


def warm(rng: DeterministicRandom, issued: Issued, keyset: Keyset) -> TicketCache:
    tickets = TicketCache()
    verify(ap_request(rng, issued), keyset, tickets)
    assert len(tickets) == 1
    return tickets


def test_a_verified_ticket_is_kept_and_served_to_its_next_request(rng: DeterministicRandom, issued: Issued,
                                                                  keyset: Keyset) -> None:
    tickets = warm(rng, issued, keyset)
    opened = tickets.get(issued.ticket, keyset.get(1), NOW)
    assert opened is not None and opened.part == issued.part
    verified = verify(ap_request(rng, issued), keyset, tickets)
    assert verified.session_key is opened.session_key  # its per-usage AEADs are derived once


def test_a_cached_ticket_is_not_served_once_it_has_ended(rng: DeterministicRandom, issued: Issued,
                                                         keyset: Keyset) -> None:
    tickets = warm(rng, issued, keyset)
    assert tickets.get(issued.ticket, keyset.get(1), END) is None
    with pytest.raises(TicketExpired):
        verify(ap_request(rng, issued, ctime=END), keyset, tickets, now=END)


def test_an_ended_ticket_is_never_put(rng: DeterministicRandom, issued: Issued, keyset: Keyset) -> None:
    tickets = TicketCache()
    part = issued.part
    tickets.put(issued.ticket, OpenedTicket(keyset.get(1), part, issued.session_key), now=part.endtime)
    assert len(tickets) == 0


def test_a_reloaded_keyset_without_the_tickets_version_refuses_it(rng: DeterministicRandom, issued: Issued,
                                                                  keyset: Keyset) -> None:
    tickets = warm(rng, issued, keyset)
    with pytest.raises(UnknownKeyVersion):
        verify(ap_request(rng, issued), service_keyset(2, 3), tickets)


def test_a_reloaded_keyset_with_other_material_under_the_same_version_refuses_it(
        rng: DeterministicRandom, issued: Issued, keyset: Keyset) -> None:
    tickets = warm(rng, issued, keyset)
    with pytest.raises(IntegrityError):
        verify(ap_request(rng, issued), Keyset([key("api v1 replaced", 1)]), tickets)


def test_an_entry_is_used_only_with_the_key_object_that_opened_it(rng: DeterministicRandom, issued: Issued,
                                                                  keyset: Keyset) -> None:
    tickets = warm(rng, issued, keyset)
    reloaded = service_keyset(1, 2)  # the same material read again: other objects
    assert tickets.get(issued.ticket, reloaded.get(1), NOW) is None
    assert verify(ap_request(rng, issued), reloaded, tickets).client == issued.part.client


def test_a_tampered_copy_of_a_cached_ticket_misses_and_is_refused(rng: DeterministicRandom, issued: Issued,
                                                                 keyset: Keyset) -> None:
    tickets = warm(rng, issued, keyset)
    sealed = bytearray(issued.ticket.enc_part)
    sealed[-1] ^= 1
    tampered = Ticket(issued.ticket.service, bytes(sealed))
    assert tickets.get(tampered, keyset.get(1), NOW) is None
    with pytest.raises(IntegrityError):
        verify(ApRequest(tampered, ap_request(rng, issued).authenticator), keyset, tickets)
    assert len(tickets) == 1


def test_every_per_request_check_still_runs_on_a_cached_ticket(rng: DeterministicRandom, issued: Issued,
                                                               keyset: Keyset) -> None:
    tickets = warm(rng, issued, keyset)
    with pytest.raises(ClockSkew):
        verify(ap_request(rng, issued, ctime=NOW + SKEW + 1), keyset, tickets)
    with pytest.raises(BindingMismatch):
        verify(ap_request(rng, issued, binding=RequestBinding("POST", BINDING.host, BINDING.path, BINDING.body)),
               keyset, tickets)
    with pytest.raises(IntegrityError):  # an authenticator sealed under another session key
        verify(ap_request(rng, issued, session_key=issue_ticket(rng, keyset.get(1)).session_key), keyset, tickets)


def test_the_cache_stays_within_its_bound(rng: DeterministicRandom, keyset: Keyset) -> None:
    tickets = TicketCache(max_entries=4)
    for _ in range(10):
        verify(ap_request(rng, issue_ticket(rng, keyset.get(1))), keyset, tickets)
    assert len(tickets) <= 4


def test_an_ended_ticket_in_the_older_generation_is_not_carried_into_the_young_one(
        rng: DeterministicRandom, issued: Issued, keyset: Keyset) -> None:
    tickets = TicketCache(max_entries=2)
    tickets.put(issued.ticket, OpenedTicket(keyset.get(1), issued.part, issued.session_key), now=NOW)
    other = issue_ticket(rng, keyset.get(1), end=END)
    tickets.put(other.ticket, OpenedTicket(keyset.get(1), other.part, other.session_key), now=NOW)  # swap: first is old
    assert tickets.get(issued.ticket, keyset.get(1), END) is None  # ended: not promoted...
    third = issue_ticket(rng, keyset.get(1), end=END)
    tickets.put(third.ticket, OpenedTicket(keyset.get(1), third.part, third.session_key), now=NOW)
    assert tickets.get(other.ticket, keyset.get(1), NOW) is not None  # ...so the next swap drops it, not a live one
    assert tickets.get(issued.ticket, keyset.get(1), NOW) is None


def test_a_cache_of_fewer_than_two_entries_is_refused() -> None:
    with pytest.raises(ValueError):
        TicketCache(max_entries=1)
