"""Whatever arrives in the Authorization header, the verifier answers with a TallyError or a success.

Never another exception: a parser bug must not become a 500.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relying_service.verifier import Verifier
from tally_protocol.binding import RequestBinding
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import TallyError
from tests.relying_service.memory_realm import HOST, NOW, MemoryRealm
from tests.relying_service.recording_cache import RecordingCache

BINDING = RequestBinding.for_http("GET", HOST, "/whoami", b"")


class Fixture:
    def __init__(self) -> None:
        self.realm = MemoryRealm.create()
        self.verifier = Verifier(self.realm.service, self.realm.service_keys, RecordingCache(), clock=lambda: NOW)
        self.header = self.realm.authorize(self.realm.service_ticket()).authorization
        self.token = b64decode(self.header.split(" ", 1)[1])


@pytest.fixture(scope="module")
def fx() -> Fixture:
    return Fixture()


def verify_outcome(verifier: Verifier, header: str) -> str:
    try:
        verifier.verify(header, BINDING)
    except TallyError as err:
        return str(err.code)
    return "accepted"


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=300))
def test_random_text_header_is_refused_with_a_tally_error(fx: Fixture, header: str) -> None:
    assert verify_outcome(fx.verifier, header) != "accepted"


@settings(max_examples=300, deadline=None)
@given(token=st.binary(max_size=600))
def test_random_bytes_as_a_tally_token_are_refused_with_a_tally_error(fx: Fixture, token: bytes) -> None:
    assert verify_outcome(fx.verifier, "Tally " + b64encode(token)) != "accepted"


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_byte_mutations_of_a_valid_token_are_refused_with_a_tally_error(fx: Fixture, data: st.DataObject) -> None:
    token = bytearray(fx.token)
    index = data.draw(st.integers(0, len(token) - 1), label="index")
    op = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]), label="op")
    if op == "flip":
        token[index] ^= data.draw(st.integers(1, 255), label="mask")
    elif op == "truncate":
        del token[index:]
    elif op == "insert":
        token[index:index] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
    else:
        del token[index]
    assert verify_outcome(fx.verifier, "Tally " + b64encode(bytes(token))) != "accepted"


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_text_mutations_of_a_valid_header_never_raise_anything_else(fx: Fixture, data: st.DataObject) -> None:
    header = fx.header
    start = data.draw(st.integers(0, len(header)), label="start")
    end = data.draw(st.integers(start, min(len(header), start + 8)), label="end")
    replacement = data.draw(st.text(max_size=8), label="replacement")
    # Outcome may be anything a TallyError says, or acceptance once if the edit
    # kept the header equivalent (e.g. the scheme's case): never another exception.
    verify_outcome(fx.verifier, header[:start] + replacement + header[end:])
