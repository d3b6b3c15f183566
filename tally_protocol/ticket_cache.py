"""Tickets already opened, kept for the next request that presents them.

A client sends the same service ticket with every request until it expires,
so the service would open it (AEAD under the service key, parse, per-usage
key derivation for its session key) again and again with the same result.
This cache keeps that result and nothing else.  Rules it keeps:

* **Keyed by the ticket exactly as received** (its outer service name and
  every sealed byte).  A ticket with one byte changed is another key: it
  finds nothing and goes through the AEAD, which refuses it.  An entry is
  only put after its ticket opened and parsed, so only authentic tickets
  are ever entries.
* **Only under the key that opened it.**  An entry records the service
  ``Key`` object that opened the ticket and is used only while the keyset
  still hands out that very object for the ticket's kvno: a keytab reload
  (a new ``Keyset``) or a retired key version makes every older entry miss,
  and the ordinary path decides (``UnknownKeyVersion``, or a fresh open).
* **Never past the ticket's end time**: an entry is not served once
  ``now >= endtime``, whatever the caller does next.
* **Only the opening is saved.**  Every per-request check (ticket times,
  authenticator AEAD, client, skew, binding, and the adapter's revocation
  and replay checks) still runs on every call, on the cached ticket part.
* **Bounded without locks**: two generations of at most ``max_entries / 2``
  entries each; when the young one fills it becomes the old one and the
  previous old one is dropped (a reference swap, so concurrent threads at
  worst lose an entry and open that ticket again).  Forged entries cannot
  be planted (see the first rule), so only valid tickets compete for room.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .keys import Key
from .messages.ticket import EncTicketPart, Ticket

#: Room for this many distinct live tickets (clients x services of one verifier); a few MB at most.
DEFAULT_MAX_ENTRIES = 8192


@dataclass(frozen=True, slots=True)
class OpenedTicket:
    """A ticket that opened under ``service_key``: its part, and its session key with derived AEADs."""

    service_key: Key = field(repr=False)
    part: EncTicketPart
    session_key: Key = field(repr=False)


class TicketCache:
    """Opened tickets by exact ticket; see the module's rules."""

    __slots__ = ("_half", "_old", "_young")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 2:
            raise ValueError("a ticket cache holds at least 2 entries")
        self._half = max_entries // 2
        self._young: dict[Ticket, OpenedTicket] = {}
        self._old: dict[Ticket, OpenedTicket] = {}

    def get(self, ticket: Ticket, service_key: Key, now: float) -> OpenedTicket | None:
        """The opened ``ticket`` if it opened under this very ``service_key`` and has not ended at ``now``."""
        opened = self._young.get(ticket)
        promote = opened is None
        if promote:
            opened = self._old.get(ticket)
        if opened is None or opened.service_key is not service_key or now >= opened.part.endtime:
            return None
        if promote:
            self._add(ticket, opened)  # still in use: keep it through the next swap (an unusable one is left to go)
        return opened

    def put(self, ticket: Ticket, opened: OpenedTicket, now: float) -> None:
        """Keep ``opened`` (which ``ticket`` opened to) unless it has already ended."""
        if now < opened.part.endtime:
            self._add(ticket, opened)

    def _add(self, ticket: Ticket, opened: OpenedTicket) -> None:
        young = self._young
        if len(young) >= self._half:
            self._old, self._young = young, {}
            young = self._young
        young[ticket] = opened

    def __len__(self) -> int:
        return len(self._young) + len(self._old)
