"""How long superseded key versions are kept, and how long new service keys wait.

A superseded version must stay until no ticket sealed under it can still be
valid: for a service, the longest service ticket lifetime; for the
ticket-granting key, the longest TGT life including renewal (a renewed TGT
keeps its original ``authtime`` and may be presented up to ``renew_till``).
Both get the realm's clock skew on top: a relying service whose clock lags
the KDC's still accepts a ticket that long after the KDC thinks it ended.

The new-service-key delay is Heimdal's ``new_service_key_delay``: a rotated
service key is written to keytabs at once but the KDC issues under it only
after the delay, so every replica has loaded it before the first ticket
needs it.  Clients have one key and no delay.
"""

from __future__ import annotations

from dataclasses import dataclass

from tally_protocol.errors import ConfigurationError
from tally_protocol.verify import VerifyPolicy

from .exchange import TicketPolicy
from .records import PrincipalKind

_TICKETS, _VERIFY = TicketPolicy(), VerifyPolicy()
#: Upper bound of a configured delay: a month.
MAX_DELAY_S = 30 * 86400
#: No policy may give a ticket (renewal included) a longer life than this.
MAX_TICKET_LIFE_S = 365 * 86400
#: No realm accepts a larger clock skew (tally_runtime.settings bounds TALLY_MAX_SKEW).
MAX_SKEW_S = 3600
#: What outlives every ticket any policy can issue: revocation entries are kept this long.
CEILING_TICKET_S = MAX_TICKET_LIFE_S + MAX_SKEW_S


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """Retention of superseded versions (seconds after they were superseded) and the default rotation delay."""

    service_retention_s: int = _TICKETS.service_ticket_lifetime_s + _VERIFY.max_skew_s
    tgs_retention_s: int = max(_TICKETS.tgt_lifetime_s, _TICKETS.renewable_lifetime_s) + _VERIFY.max_skew_s
    new_service_key_delay_s: int = 0

    def __post_init__(self) -> None:
        if min(self.service_retention_s, self.tgs_retention_s) < 0:
            raise ConfigurationError("key retention cannot be negative")
        if not 0 <= self.new_service_key_delay_s <= MAX_DELAY_S:
            raise ConfigurationError(f"the new service key delay must be between 0 and {MAX_DELAY_S} seconds")

    @classmethod
    def for_tickets(cls, tickets: TicketPolicy, *, max_skew_s: int, new_service_key_delay_s: int = 0) -> KeyPolicy:
        """Retention derived from the lifetimes the KDC issues with."""
        return cls(
            service_retention_s=tickets.service_ticket_lifetime_s + max_skew_s,
            tgs_retention_s=max(tickets.tgt_lifetime_s, tickets.renewable_lifetime_s) + max_skew_s,
            new_service_key_delay_s=new_service_key_delay_s,
        )

    def retention_s(self, kind: PrincipalKind) -> int:
        return self.tgs_retention_s if kind is PrincipalKind.TGS else self.service_retention_s

    def default_delay_s(self, kind: PrincipalKind) -> int:
        """The delay a rotation gets when the administrator names none: services only."""
        return self.new_service_key_delay_s if kind is PrincipalKind.SERVICE else 0

    @property
    def longest_ticket_s(self) -> int:
        """No ticket of the realm outlives this: the bound for revocation entries."""
        return max(self.service_retention_s, self.tgs_retention_s)
