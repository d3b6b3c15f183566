"""Known-answer vectors: the committed bytes in tests/vectors/*.json are what the code makes today.

Two checks per vector: recompute every output from the committed inputs and
compare byte for byte (catches any change to the wire format), and decode
the committed bytes with the parsers and keys alone (catches a generator
that drifted together with the code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tally_protocol.binding import RequestBinding, response_digest
from tally_protocol.codes import KeyUsage, MessageType, TicketFlags
from tally_protocol.crypto import HEADER, NONCE_SIZE, unseal, x25519_shared_secret
from tally_protocol.encoding import PROTOCOL_VERSION, peek_unverified_type
from tally_protocol.keys import Key, Keyset
from tally_protocol.keytab import load_keytab
from tally_protocol.messages import (
    AsReply,
    AsRequest,
    Authenticator,
    EncApRepPart,
    TgsReply,
    TgsRequest,
    TgsRequestBody,
    Ticket,
    open_ap_reply,
    parse_authorization,
)
from tally_protocol.principal import Principal
from tally_protocol.verify import verify_ap_request
from tests.vectors.generate import COMPUTE, HERE

VECTORS = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(HERE.glob("*.json"))}


def _b(value: str) -> bytes:
    return bytes.fromhex(value)


def _vector(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return VECTORS[name]["inputs"], VECTORS[name]["outputs"]


def test_every_vector_file_is_known_and_present() -> None:
    assert set(VECTORS) == set(COMPUTE)
    assert all(Path(HERE / f"{name}.json").is_file() for name in COMPUTE)


@pytest.mark.parametrize("name", sorted(COMPUTE))
def test_outputs_recomputed_from_inputs_match_byte_for_byte(name: str) -> None:
    inputs, outputs = _vector(name)
    assert COMPUTE[name](inputs) == outputs


def test_usage_keys_are_all_distinct() -> None:
    inputs, outputs = _vector("usage_keys")
    keys = [entry["key"] for entry in outputs.values()]
    assert len(set(keys)) == len(KeyUsage) and inputs["key"] not in keys
    assert {name: entry["usage"] for name, entry in outputs.items()} == {u.name: int(u) for u in KeyUsage}


def test_ticket_vector_decodes_under_the_service_key() -> None:
    inputs, outputs = _vector("ticket")
    ticket = Ticket.from_bytes(_b(outputs["ticket"]))
    assert ticket.service == Principal.parse(inputs["service"])
    assert ticket.enc_part[:HEADER.size] == HEADER.pack(PROTOCOL_VERSION, KeyUsage.TICKET, inputs["kvno"])
    assert ticket.enc_part[HEADER.size:HEADER.size + NONCE_SIZE] == _b(inputs["nonce"])
    part = ticket.open(Key(_b(inputs["service_key"]), inputs["kvno"]))
    assert part.to_bytes() == _b(outputs["enc_ticket_part"])
    assert (part.client, part.session_key, part.ticket_id) == (
        Principal.parse(inputs["client"]), _b(inputs["session_key"]), _b(inputs["ticket_id"]))
    assert (part.authtime, part.starttime, part.endtime, part.renew_till) == (
        inputs["authtime"], inputs["starttime"], inputs["endtime"], inputs["renew_till"])
    assert part.flags == TicketFlags(inputs["flags"])


def test_authenticator_vector_decodes_under_the_session_key() -> None:
    inputs, outputs = _vector("authenticator")
    plain = unseal(Key(_b(inputs["session_key"]), 0), KeyUsage.AP_REQ_AUTHENTICATOR, _b(outputs["sealed"]))
    assert plain == _b(outputs["authenticator"])
    auth = Authenticator.from_bytes(plain)
    assert auth.binding == RequestBinding("POST", inputs["host"], inputs["path"], _b(outputs["body_sha256"]))
    assert (auth.ctime, auth.nonce) == (inputs["ctime"], _b(inputs["nonce"]))


def test_ap_request_vector_verifies_at_the_service() -> None:
    ticket_in, _ = _vector("ticket")
    auth_in, _ = _vector("authenticator")
    _, outputs = _vector("ap_request")
    ap_req = parse_authorization(outputs["authorization"])
    assert ap_req.to_bytes() == _b(outputs["ap_request"])
    binding = RequestBinding.for_http(auth_in["method"], auth_in["host"], auth_in["path"], _b(auth_in["body"]))
    verified = verify_ap_request(
        ap_req, service=Principal.parse(ticket_in["service"]),
        keyset=Keyset([Key(_b(ticket_in["service_key"]), ticket_in["kvno"])]), binding=binding, now=auth_in["ctime"],
    )
    assert verified.client == Principal.parse(ticket_in["client"])


def test_ap_reply_vector_proves_the_service_to_the_client() -> None:
    inputs, outputs = _vector("ap_reply")
    expected = EncApRepPart(inputs["ctime"], _b(inputs["nonce"]), response_digest(inputs["status"], _b(inputs["body"])))
    assert expected.to_bytes() == _b(outputs["enc_ap_rep_part"])
    open_ap_reply(Key(_b(inputs["session_key"]), 0), outputs["authentication_info"], expected)


def test_as_vector_preauth_and_reply_open_as_the_protocol_says() -> None:
    inputs, outputs = _vector("as_exchange")
    client_key = Key(_b(inputs["client_key"]), 0)
    request_bytes = _b(outputs["as_request"])
    request = AsRequest.from_bytes(request_bytes)
    assert request.body_bytes() == _b(outputs["as_request_body"])
    assert request.open_preauth(client_key).timestamp == inputs["preauth_timestamp"]
    assert request.client_public == _b(outputs["client_public"])
    reply = AsReply.from_bytes(_b(outputs["as_reply"]))
    assert peek_unverified_type(_b(outputs["as_reply"])) is MessageType.AS_REP
    shared = x25519_shared_secret(_b(inputs["client_private"]), reply.kdc_public)
    assert shared == _b(outputs["shared_secret"])
    part = reply.open(client_key, shared, request_bytes)
    assert part.to_bytes() == _b(outputs["enc_kdc_rep_part"])
    assert (part.nonce, part.session_key) == (_b(inputs["nonce"]), _b(inputs["session_key"]))
    assert unseal(Key(_b(outputs["reply_key"]), 0), KeyUsage.AS_REP_ENC_PART, reply.enc_part) == part.to_bytes()
    tgt = reply.ticket.open(Key(_b(inputs["tgs_key"]), inputs["tgs_kvno"]))
    assert tgt.session_key == part.session_key


def test_tgs_vector_request_verifies_at_the_tgs_and_reply_opens() -> None:
    inputs, outputs = _vector("tgs_exchange")
    as_in, _ = _vector("as_exchange")
    request = TgsRequest.from_bytes(_b(outputs["tgs_request"]))
    assert TgsRequestBody.from_bytes(request.body).service == Principal.parse(inputs["service"])
    verified = verify_ap_request(
        request.ap_req, service=Principal.tgs(inputs["realm"]),
        keyset=Keyset([Key(_b(as_in["tgs_key"]), as_in["tgs_kvno"])]),
        binding=RequestBinding.for_tgs(inputs["realm"], request.body), now=inputs["ctime"],
    )
    assert verified.authenticator.to_bytes() == _b(outputs["authenticator"])
    reply = TgsReply.from_bytes(_b(outputs["tgs_reply"]))
    part = reply.open(Key(_b(inputs["tgt_session_key"]), 0))
    assert part.to_bytes() == _b(outputs["enc_kdc_rep_part"])
    assert reply.ticket.to_bytes() == _b(inputs["service_ticket"])


def test_keytab_vector_loads_every_key_version() -> None:
    inputs, outputs = _vector("keytab")
    principal, keyset = load_keytab(_b(outputs["keytab"]))
    assert principal == Principal.parse(inputs["principal"])
    assert [(k.kvno, k.material.hex()) for k in keyset] == [(k["kvno"], k["key"]) for k in inputs["keys"]]
