"""KDC transport: typed errors from error bodies, clear errors for everything unexpected, bounded waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses

from client_sdk import KdcClient
from client_sdk.kdc_client import TIMEOUT
from tally_protocol.errors import (
    ClockSkew,
    ConfigurationError,
    KdcUnreachable,
    LockedOut,
    MalformedMessage,
    PreauthFailed,
    TallyError,
)
from tally_protocol.keys import PasswordParams
from tests.client_sdk.realm import BOB, CHEAP_PARAMS, KDC_URL

AS_URL = KDC_URL + "/v1/as"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def test_as_exchange_posts_base64url_json_and_returns_reply_bytes(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, json={"as_rep": "AQID"}, match=[responses.matchers.json_params_matcher({"as_req": "BAUG"})])
    assert KdcClient(KDC_URL).as_exchange(b"\x04\x05\x06") == b"\x01\x02\x03"


def test_every_kdc_request_has_a_timeout(rsps: responses.RequestsMock) -> None:
    rsps.post(KDC_URL + "/v1/tgs", json={"tgs_rep": "AQID"})
    KdcClient(KDC_URL).tgs_exchange(b"x")
    assert rsps.calls[0].request.req_kwargs["timeout"] == TIMEOUT  # type: ignore[attr-defined]


def test_error_body_becomes_the_typed_error(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, status=401, json={"error": "PREAUTH_FAILED", "message": "pre-authentication failed"})
    with pytest.raises(PreauthFailed):
        KdcClient(KDC_URL).as_exchange(b"x")


def test_clock_skew_error_keeps_the_server_time(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, status=401, json={"error": "CLOCK_SKEW", "message": "skew", "server_time": 1234})
    with pytest.raises(ClockSkew) as caught:
        KdcClient(KDC_URL).as_exchange(b"x")
    assert caught.value.data["server_time"] == 1234


def test_retry_after_header_is_kept_on_the_error(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, status=429, json={"error": "LOCKED_OUT", "message": "locked"}, headers={"Retry-After": "30"})
    with pytest.raises(LockedOut) as caught:
        KdcClient(KDC_URL).as_exchange(b"x")
    assert caught.value.data["retry_after"] == 30


def test_unknown_error_code_is_still_a_tally_error(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, status=418, json={"error": "FUTURE_CODE", "message": "new", "code": "x"})
    with pytest.raises(TallyError, match="new"):
        KdcClient(KDC_URL).as_exchange(b"x")


def test_refused_connection_is_kdc_unreachable(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, body=requests.ConnectionError("refused"))
    with pytest.raises(KdcUnreachable, match="could not be reached"):
        KdcClient(KDC_URL).as_exchange(b"x")


def test_timeout_is_kdc_unreachable(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, body=requests.ReadTimeout("slow"))
    with pytest.raises(KdcUnreachable, match="in time"):
        KdcClient(KDC_URL).as_exchange(b"x")


def test_html_error_page_is_a_clear_error_not_a_traceback(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, status=404, body="<html>Not Found</html>", content_type="text/html")
    with pytest.raises(KdcUnreachable, match="HTTP 404 without a tallystick error"):
        KdcClient(KDC_URL).as_exchange(b"x")


def test_success_that_is_not_json_is_malformed(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, body="hello", content_type="text/plain")
    with pytest.raises(MalformedMessage, match="other than JSON"):
        KdcClient(KDC_URL).as_exchange(b"x")


@pytest.mark.parametrize("answer", [{}, {"as_rep": 5}, {"tgs_rep": "AQID"}])
def test_success_without_the_expected_field_is_malformed(rsps: responses.RequestsMock, answer: object) -> None:
    rsps.post(AS_URL, json=answer)
    with pytest.raises(MalformedMessage, match="has no 'as_rep'"):
        KdcClient(KDC_URL).as_exchange(b"x")


def test_redirects_are_not_followed(rsps: responses.RequestsMock) -> None:
    rsps.post(AS_URL, status=307, headers={"Location": "http://127.0.0.1:9999/v1/as"})
    with pytest.raises(KdcUnreachable, match="HTTP 307"):
        KdcClient(KDC_URL).as_exchange(b"x")


def test_password_params_are_parsed(rsps: responses.RequestsMock) -> None:
    rsps.post(KDC_URL + "/v1/as/params", json=CHEAP_PARAMS.to_dict(),
              match=[responses.matchers.json_params_matcher({"principal": str(BOB)})])
    assert KdcClient(KDC_URL).password_params(BOB) == CHEAP_PARAMS


def test_hostile_password_params_are_refused(rsps: responses.RequestsMock) -> None:
    rsps.post(KDC_URL + "/v1/as/params", json={**PasswordParams(salt=b"s" * 16).to_dict(), "memory_kib": 2**30})
    with pytest.raises(MalformedMessage):
        KdcClient(KDC_URL).password_params(BOB)


@pytest.mark.parametrize("url", ["127.0.0.1:8750", "ftp://127.0.0.1", "http://"])
def test_kdc_url_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(ConfigurationError, match="KDC URL"):
        KdcClient(url)
