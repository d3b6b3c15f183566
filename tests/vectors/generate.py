"""Known-answer vectors for tallystick's wire format: ``tests/vectors/*.json``.

Each file holds ``inputs`` (keys, nonces, names, times: everything the
protocol would otherwise take from ``rng`` and the clock) and ``outputs``
(the exact bytes, in hex, that the protocol makes from them).  The vectors
were generated once with a deterministic rng and a fixed time and committed;
``tests/protocol/test_vectors.py`` recomputes ``outputs`` from ``inputs`` and
compares byte for byte, so any change to the encoding, the key derivation or
the sealed layout fails loudly.  Regenerate only for a deliberate, versioned
wire change::

    python -m tests.vectors.generate

Only tally_protocol is used (no KDC or client code), so the vectors pin the
wire format and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tally_protocol.binding import RequestBinding, response_digest
from tally_protocol.codes import KeyUsage, TgsOptions, TicketFlags
from tally_protocol.crypto import (
    derive_password_key,
    derive_reply_key,
    derive_usage_key,
    digest,
    seal,
    x25519_public_key,
    x25519_shared_secret,
)
from tally_protocol.keys import Key, Keyset, PasswordParams
from tally_protocol.keytab import dump_keytab
from tally_protocol.messages import (
    ApRequest,
    AsReply,
    AsRequest,
    Authenticator,
    EncApRepPart,
    EncKdcRepPart,
    EncTicketPart,
    TgsReply,
    TgsRequest,
    TgsRequestBody,
    Ticket,
    format_authorization,
    seal_ap_reply,
)
from tally_protocol.messages.as_rep import as_transcript
from tally_protocol.principal import Principal

HERE = Path(__file__).parent
SEED = b"tallystick-v1 known-answer vectors"
NOW = 1_700_000_000  # 2023-11-14T22:13:20Z
REALM = "EXAMPLE.TEST"

Json = dict[str, Any]


def _random(label: str, n: int) -> str:
    """Deterministic "random" bytes, hex: SHAKE-256(seed | label)."""
    return hashlib.shake_256(SEED + b"|" + label.encode()).hexdigest(n)


def _b(value: str) -> bytes:
    return bytes.fromhex(value)


# -- inputs --------------------------------------------------------------------

def inputs() -> dict[str, Json]:
    """The inputs of every vector file, derived from ``SEED`` and ``NOW`` only."""
    ticket = {
        "service": f"api@{REALM}", "service_key": _random("api key", 32), "kvno": 3,
        "flags": int(TicketFlags.PRE_AUTHENTICATED | TicketFlags.FORWARD_SECRET),
        "session_key": _random("ticket session key", 32), "client": f"alice@{REALM}",
        "authtime": NOW - 600, "starttime": NOW, "endtime": NOW + 36000, "renew_till": 0,
        "ticket_id": _random("ticket id", 16), "nonce": _random("ticket nonce", 12),
    }
    authenticator = {
        "client": f"alice@{REALM}", "ctime": NOW + 5, "nonce": _random("authenticator nonce", 16),
        "method": "post", "host": "api.example.test:8443", "path": "/echo?lang=en%20GB",
        "body": b'{"hello":"world"}'.hex(), "session_key": ticket["session_key"],
        "aead_nonce": _random("authenticator aead nonce", 12),
    }
    ap_reply = {
        "session_key": ticket["session_key"], "ctime": authenticator["ctime"], "nonce": authenticator["nonce"],
        "status": 200, "body": b'{"hello":"world"}'.hex(), "aead_nonce": _random("ap reply aead nonce", 12),
    }
    as_exchange = {
        "client": f"alice@{REALM}", "client_key": _random("alice key", 32), "realm": REALM,
        "client_private": _random("client x25519", 32), "nonce": _random("as nonce", 16),
        "till": 0, "renewable": True, "preauth_timestamp": NOW, "preauth_nonce": _random("preauth nonce", 12),
        "kdc_private": _random("kdc x25519", 32), "tgs_key": _random("krbtgt key", 32), "tgs_kvno": 1,
        "session_key": _random("tgt session key", 32), "ticket_id": _random("tgt id", 16),
        "ticket_nonce": _random("tgt nonce", 12), "reply_nonce": _random("as reply nonce", 12),
        "flags": int(TicketFlags.INITIAL | TicketFlags.PRE_AUTHENTICATED | TicketFlags.FORWARD_SECRET
                     | TicketFlags.RENEWABLE),
        "authtime": NOW, "starttime": NOW, "endtime": NOW + 36000, "renew_till": NOW + 604800,
    }
    # The TGS vector carries the TGT of the AS vector and the service ticket of the ticket vector.
    tgs_exchange = {
        "tgt": compute_as_exchange(as_exchange)["tgt"], "tgt_session_key": as_exchange["session_key"], "client": f"alice@{REALM}",
        "realm": REALM, "service": f"api@{REALM}", "nonce": _random("tgs nonce", 16), "till": 0,
        "options": int(TgsOptions.NONE), "ctime": NOW + 60, "authenticator_nonce": _random("tgs auth nonce", 16),
        "authenticator_aead_nonce": _random("tgs auth aead nonce", 12),
        "service_ticket": compute_ticket(ticket)["ticket"], "service_session_key": ticket["session_key"],
        "flags": ticket["flags"], "authtime": NOW, "starttime": NOW + 60, "endtime": NOW + 36000,
        "reply_nonce": _random("tgs reply nonce", 12),
    }
    usage_keys = {"key": _random("usage base key", 32), "kvno": 7}
    keytab = {"principal": f"api@{REALM}", "keys": [
        {"kvno": 2, "key": _random("api key v2", 32)}, {"kvno": 3, "key": ticket["service_key"]},
    ]}
    password_key = {"password": "correct horse battery staple", "salt": _random("bob salt", 16),
                    "iterations": 1, "memory_kib": 64, "lanes": 1}
    return {
        "usage_keys": usage_keys, "ticket": ticket, "authenticator": authenticator,
        "ap_request": {"ticket": compute_ticket(ticket)["ticket"],
                       "authenticator": compute_authenticator(authenticator)["sealed"]},
        "ap_reply": ap_reply, "as_exchange": as_exchange, "tgs_exchange": tgs_exchange,
        "keytab": keytab, "password_key": password_key,
    }


# -- outputs -------------------------------------------------------------------

def compute_usage_keys(i: Json) -> Json:
    key = Key(_b(i["key"]), i["kvno"])
    return {usage.name: {"usage": int(usage), "key": derive_usage_key(key, usage).hex()} for usage in KeyUsage}


def _ticket_part(i: Json) -> EncTicketPart:
    return EncTicketPart(
        TicketFlags(i["flags"]), _b(i["session_key"]), Principal.parse(i["client"]),
        i["authtime"], i["starttime"], i["endtime"], i["renew_till"], _b(i["ticket_id"]),
    )


def compute_ticket(i: Json) -> Json:
    part = _ticket_part(i)
    ticket = Ticket.issue(Principal.parse(i["service"]), Key(_b(i["service_key"]), i["kvno"]), part,
                          nonce=_b(i["nonce"]))
    return {"enc_ticket_part": part.to_bytes().hex(), "ticket": ticket.to_bytes().hex()}


def _binding(i: Json) -> RequestBinding:
    return RequestBinding.for_http(i["method"], i["host"], i["path"], _b(i["body"]))


def compute_authenticator(i: Json) -> Json:
    auth = Authenticator(Principal.parse(i["client"]), i["ctime"], _b(i["nonce"]), _binding(i))
    # As ApRequest.create seals it: under the session key (kvno 0), no extra associated data.
    sealed = seal(Key(_b(i["session_key"]), 0), KeyUsage.AP_REQ_AUTHENTICATOR, auth.to_bytes(), nonce=_b(i["aead_nonce"]))
    return {"body_sha256": _binding(i).body.hex(), "authenticator": auth.to_bytes().hex(), "sealed": sealed.hex()}


def compute_ap_request(i: Json) -> Json:
    ap_req = ApRequest(Ticket.from_bytes(_b(i["ticket"])), _b(i["authenticator"]))
    return {"ap_request": ap_req.to_bytes().hex(), "authorization": format_authorization(ap_req)}


def compute_ap_reply(i: Json) -> Json:
    response = response_digest(i["status"], _b(i["body"]))
    part = EncApRepPart(i["ctime"], _b(i["nonce"]), response)
    header = seal_ap_reply(Key(_b(i["session_key"]), 0), part, nonce=_b(i["aead_nonce"]))
    return {"response_digest": response.hex(), "enc_ap_rep_part": part.to_bytes().hex(), "authentication_info": header}


def compute_as_exchange(i: Json) -> Json:
    client, tgs = Principal.parse(i["client"]), Principal.tgs(i["realm"])
    client_key = Key(_b(i["client_key"]), 0)
    client_public = x25519_public_key(_b(i["client_private"]))
    request = AsRequest(client, tgs, _b(i["nonce"]), i["till"], i["renewable"], client_public)
    request = request.with_preauth(client_key, i["preauth_timestamp"], nonce=_b(i["preauth_nonce"]))
    request_bytes = request.to_bytes()
    kdc_public = x25519_public_key(_b(i["kdc_private"]))
    shared = x25519_shared_secret(_b(i["kdc_private"]), client_public)
    flags = TicketFlags(i["flags"])
    tgt_part = EncTicketPart(flags, _b(i["session_key"]), client, i["authtime"], i["starttime"], i["endtime"],
                             i["renew_till"], _b(i["ticket_id"]))
    tgt = Ticket.issue(tgs, Key(_b(i["tgs_key"]), i["tgs_kvno"]), tgt_part, nonce=_b(i["ticket_nonce"]))
    rep_part = EncKdcRepPart(_b(i["session_key"]), _b(i["nonce"]), flags, i["authtime"], i["starttime"],
                             i["endtime"], i["renew_till"], tgs)
    reply = AsReply.create(client=client, ticket=tgt, kdc_public=kdc_public, client_key=client_key,
                           shared_secret=shared, as_req_bytes=request_bytes, part=rep_part,
                           nonce=_b(i["reply_nonce"]))
    reply_key = derive_reply_key(client_key, shared, as_transcript(request_bytes, kdc_public))
    return {
        "client_public": client_public.hex(), "as_request_body": request.body_bytes().hex(),
        "preauth_context": digest(request.body_bytes()).hex(), "as_request": request_bytes.hex(),
        "kdc_public": kdc_public.hex(), "shared_secret": shared.hex(), "reply_key": reply_key.material.hex(),
        "tgt": tgt.to_bytes().hex(), "enc_kdc_rep_part": rep_part.to_bytes().hex(), "as_reply": reply.to_bytes().hex(),
    }


def compute_tgs_exchange(i: Json) -> Json:
    client, service = Principal.parse(i["client"]), Principal.parse(i["service"])
    body = TgsRequestBody(service, _b(i["nonce"]), i["till"], TgsOptions(i["options"])).to_bytes()
    auth = Authenticator(client, i["ctime"], _b(i["authenticator_nonce"]), RequestBinding.for_tgs(i["realm"], body))
    tgt_key = Key(_b(i["tgt_session_key"]), 0)
    ap_req = ApRequest.create(Ticket.from_bytes(_b(i["tgt"])), tgt_key, auth, nonce=_b(i["authenticator_aead_nonce"]))
    part = EncKdcRepPart(_b(i["service_session_key"]), _b(i["nonce"]), TicketFlags(i["flags"]), i["authtime"],
                         i["starttime"], i["endtime"], 0, service)
    reply = TgsReply.create(client=client, ticket=Ticket.from_bytes(_b(i["service_ticket"])), tgt_session_key=tgt_key,
                            part=part, nonce=_b(i["reply_nonce"]))
    return {
        "tgs_request_body": body.hex(), "authenticator": auth.to_bytes().hex(),
        "tgs_request": TgsRequest(body, ap_req).to_bytes().hex(), "enc_kdc_rep_part": part.to_bytes().hex(),
        "tgs_reply": reply.to_bytes().hex(),
    }


def compute_keytab(i: Json) -> Json:
    keyset = Keyset(Key(_b(k["key"]), k["kvno"]) for k in i["keys"])
    return {"keytab": dump_keytab(Principal.parse(i["principal"]), keyset).hex()}


def compute_password_key(i: Json) -> Json:
    params = PasswordParams(_b(i["salt"]), i["iterations"], i["memory_kib"], i["lanes"])
    return {"key": derive_password_key(i["password"], params).hex()}


COMPUTE: dict[str, Callable[[Json], Json]] = {
    "usage_keys": compute_usage_keys,
    "ticket": compute_ticket,
    "authenticator": compute_authenticator,
    "ap_request": compute_ap_request,
    "ap_reply": compute_ap_reply,
    "as_exchange": compute_as_exchange,
    "tgs_exchange": compute_tgs_exchange,
    "keytab": compute_keytab,
    "password_key": compute_password_key,
}


def build() -> dict[str, Json]:
    return {name: {"inputs": i, "outputs": COMPUTE[name](i)} for name, i in inputs().items()}


def main() -> None:
    for name, vector in build().items():
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(vector, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
