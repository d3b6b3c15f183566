"""Tickets and requests made with the project's own pure functions, with no KDC process.

``issue_service_ticket`` runs the client flow (``client_sdk.flow``) against
the KDC's exchange functions (``kdc.exchange``) in memory, exactly what a KDC
does minus the store and HTTP, so the benchmark can pre-generate requests
for a service whose keytab it wrote itself.
"""

from __future__ import annotations

import os
import time

from client_sdk.flow import (
    Credential,
    finish_as_exchange,
    finish_tgs_exchange,
    start_as_exchange,
    start_tgs_exchange,
)
from kdc.exchange import TicketPolicy, check_preauth, check_tgs_request, issue_service_ticket, issue_tgt
from tally_protocol.keys import KEY_SIZE, Key, Keyset
from tally_protocol.messages import TgsRequest
from tally_protocol.principal import Principal
from tally_protocol.verify import VerifyPolicy


def service_ticket(client: Principal, service: Principal, service_key: Key, *, now: float | None = None) -> Credential:
    """A TGT from an AS exchange, then a ticket for ``service`` from a TGS exchange, all in memory."""
    now = time.time() if now is None else now
    tgs_key = Key(os.urandom(KEY_SIZE), 1)
    client_key = Key(os.urandom(KEY_SIZE), 0)
    pending = start_as_exchange(client, client_key, now=now, rng=os.urandom)
    checked = check_preauth(pending.request, client_key, now=now, verify=VerifyPolicy())
    reply = issue_tgt(checked, pending.request_bytes, client_key=client_key, tgs_key=tgs_key, policy=TicketPolicy(),
                      now=now, rng=os.urandom).reply
    tgt = finish_as_exchange(pending, reply.to_bytes())
    tgs = start_tgs_exchange(tgt, service, now=now, rng=os.urandom)
    verified, body = check_tgs_request(TgsRequest.from_bytes(tgs.request_bytes), realm=client.realm,
                                       tgs_keys=Keyset([tgs_key]), now=now, verify=VerifyPolicy())
    rep = issue_service_ticket(verified, body, service_key=service_key, policy=TicketPolicy(), now=now,
                               rng=os.urandom).reply
    return finish_tgs_exchange(tgs, rep.to_bytes())

