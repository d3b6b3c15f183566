"""Known-answer vectors for the onboarding wire format: ``onboarding_vectors.json`` beside this file.

The inputs fix everything the flows would take from ``rng`` (token, X25519
and SPAKE2 secrets, ids, nonces); the outputs are the exact bytes on the
wire.  ``test_onboarding_vectors.py`` recomputes them byte for byte, so a
change to an encoding, an HKDF label or the ``spake2`` package's group or
constants fails loudly.  Regenerate only for a deliberate wire change::

    python -m tests.kdc.onboarding.vectors
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tally_protocol.enrollment import (
    TokenSecrets,
    format_token,
    prepare_enrollment_reply,
    start_enrollment,
)
from tally_protocol.keys import Key, Keyset
from tally_protocol.keytab import dump_keytab
from tally_protocol.pairing import answer_pairing_start, confirm_pairing, seal_pairing_reply, start_pairing
from tally_protocol.principal import Principal

PATH = Path(__file__).with_name("onboarding_vectors.json")
Json = dict[str, Any]


def stream(label: str) -> Callable[[int], bytes]:
    """A deterministic rng: SHA-256 in counter mode over ``label`` (test vectors only)."""
    state = {"counter": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(f"{label}:{state['counter']}".encode()).digest()
            state["counter"] += 1
        return out[:n]

    return rng


def _b(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


def inputs() -> Json:
    r = stream("tallystick-v1 onboarding vectors")
    return {
        "principal": "alice@EXAMPLE.TEST",
        "key": r(32).hex(), "kvno": 2,
        "token": r(20).hex(), "device_private": r(32).hex(), "kdc_private": r(32).hex(), "enroll_nonce": r(12).hex(),
        "code": "31415926", "device_entropy": "pairing device", "kdc_entropy": "pairing kdc",
        "pairing_id": r(16).hex(), "pair_nonce": r(12).hex(),
    }


def compute(i: Json) -> Json:
    principal = Principal.parse(i["principal"])
    keytab = dump_keytab(principal, Keyset([Key(_b(i["key"]), i["kvno"])]))
    token = _b(i["token"])
    secrets = TokenSecrets.derive(token)
    pending = start_enrollment(token, _b(i["device_private"]))
    reply = prepare_enrollment_reply(pending.request, secrets.verifier, kdc_private=_b(i["kdc_private"]))
    device = start_pairing(principal, i["code"], stream(i["device_entropy"]))
    kdc = answer_pairing_start(device.start, i["code"], realm=principal.realm, pairing_id=_b(i["pairing_id"]),
                               rng=stream(i["kdc_entropy"]))
    confirmed = confirm_pairing(device, kdc.challenge.to_bytes())
    return {
        "token_text": format_token(token),
        "token_id": secrets.token_id.hex(),
        "enroll_req": pending.request_bytes.hex(),
        "enroll_rep": reply.seal(keytab, nonce=_b(i["enroll_nonce"])).to_bytes().hex(),
        "pair_start": device.start_bytes.hex(),
        "pair_challenge": kdc.challenge.to_bytes().hex(),
        "pair_finish": confirmed.finish_bytes.hex(),
        "pair_rep": seal_pairing_reply(kdc.session_key, kdc.transcript, keytab,
                                       nonce=_b(i["pair_nonce"])).to_bytes().hex(),
    }


def main() -> None:
    i = inputs()
    PATH.write_text(json.dumps({"inputs": i, "outputs": compute(i)}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
