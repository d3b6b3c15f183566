"""The onboarding wire format recomputed byte for byte from ``onboarding_vectors.json`` (see ``vectors.py``)."""

from __future__ import annotations

import json

from tally_protocol.enrollment import finish_enrollment, start_enrollment
from tally_protocol.messages.enrollment import EnrollRequest
from tally_protocol.messages.pairing import PairChallenge, PairFinish, PairReply, PairStart
from tests.kdc.onboarding.vectors import PATH, compute

VECTORS = json.loads(PATH.read_text(encoding="utf-8"))


def test_outputs_recomputed_from_inputs_match_byte_for_byte() -> None:
    assert compute(VECTORS["inputs"]) == VECTORS["outputs"]


def test_vector_messages_parse_and_reencode_identically() -> None:
    out = VECTORS["outputs"]
    for parse, name in ((EnrollRequest.from_bytes, "enroll_req"), (PairStart.from_bytes, "pair_start"),
                        (PairChallenge.from_bytes, "pair_challenge"), (PairFinish.from_bytes, "pair_finish"),
                        (PairReply.from_bytes, "pair_rep")):
        assert parse(bytes.fromhex(out[name])).to_bytes().hex() == out[name]


def test_the_vector_enrollment_reply_opens_to_the_vector_key() -> None:
    i, out = VECTORS["inputs"], VECTORS["outputs"]
    pending = start_enrollment(bytes.fromhex(i["token"]), bytes.fromhex(i["device_private"]))
    principal, keyset = finish_enrollment(pending, bytes.fromhex(out["enroll_rep"]))
    assert (str(principal), keyset.current.material.hex(), keyset.current.kvno) == (i["principal"], i["key"], i["kvno"])
