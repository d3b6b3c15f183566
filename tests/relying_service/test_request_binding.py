"""The server rebuilds exactly the binding the client signed, and a client cannot steer it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relying_service.request_binding import BindingConfig, PublicUrl, binding_from_environ
from tally_protocol.binding import RequestBinding, canonical_host
from tally_protocol.errors import ConfigurationError


def environ(**overrides: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "wsgi.url_scheme": "http", "HTTP_HOST": "api.example.test",
        "SERVER_NAME": "api.example.test", "SERVER_PORT": "80", "SCRIPT_NAME": "", "PATH_INFO": "/whoami",
        "QUERY_STRING": "",
    }
    env.update(overrides)
    return env


def test_raw_uri_is_used_verbatim_as_the_path() -> None:
    env = environ(RAW_URI="/a%2Fb/c?x=%41", PATH_INFO="/a/b/c", QUERY_STRING="x=%41")
    assert binding_from_environ(env, b"").path == "/a%2Fb/c?x=%41"


def test_request_uri_is_used_when_raw_uri_is_absent() -> None:
    assert binding_from_environ(environ(REQUEST_URI="/x%20y?q=1", QUERY_STRING="q=1"), b"").path == "/x%20y?q=1"


def test_query_string_is_added_when_raw_uri_lacks_it() -> None:
    # werkzeug's test environ puts only the path in RAW_URI.
    assert binding_from_environ(environ(RAW_URI="/echo", QUERY_STRING="to=bob"), b"").path == "/echo?to=bob"


def test_absolute_form_request_target_keeps_only_path_and_query() -> None:
    env = environ(RAW_URI="http://api.example.test/echo?x=1", QUERY_STRING="x=1")
    assert binding_from_environ(env, b"").path == "/echo?x=1"


def test_without_raw_uri_the_path_is_requoted_from_script_name_and_path_info() -> None:
    # PEP 3333: PATH_INFO holds the URL-decoded bytes as latin-1 ("ü" in UTF-8 is C3 BC).
    env = environ(SCRIPT_NAME="/api", PATH_INFO="/a b/\xc3\xbc", QUERY_STRING="q=%20")
    assert binding_from_environ(env, b"").path == "/api/a%20b/%C3%BC?q=%20"


def test_host_header_is_canonicalised_for_the_scheme() -> None:
    env = environ(HTTP_HOST="API.Example.Test:443", **{"wsgi.url_scheme": "https"})
    assert binding_from_environ(env, b"").host == "api.example.test"


def test_non_default_port_stays_in_the_host() -> None:
    assert binding_from_environ(environ(HTTP_HOST="api.example.test:8443"), b"").host == "api.example.test:8443"


def test_missing_host_header_falls_back_to_server_name_and_port() -> None:
    env = environ(SERVER_NAME="127.0.0.1", SERVER_PORT="8751")
    del env["HTTP_HOST"]
    assert binding_from_environ(env, b"").host == "127.0.0.1:8751"


def test_body_and_method_are_bound() -> None:
    binding = binding_from_environ(environ(REQUEST_METHOD="post", RAW_URI="/echo"), b"pay 10")
    assert binding == RequestBinding.for_http("POST", "api.example.test", "/echo", b"pay 10")


FORWARDED = {"HTTP_X_FORWARDED_HOST": "public.example.test", "HTTP_X_FORWARDED_PROTO": "https",
             "HTTP_X_FORWARDED_PREFIX": "/api"}


def test_forwarded_headers_are_ignored_unless_trusted() -> None:
    binding = binding_from_environ(environ(RAW_URI="/whoami", **FORWARDED), b"")
    assert (binding.host, binding.path) == ("api.example.test", "/whoami")


def test_trusted_forwarded_headers_give_the_public_host_and_prefix() -> None:
    binding = binding_from_environ(environ(RAW_URI="/whoami", **FORWARDED), b"", BindingConfig(trust_forwarded=True))
    assert (binding.host, binding.path) == ("public.example.test", "/api/whoami")


def test_trusted_forwarded_proto_drops_its_default_port() -> None:
    env = environ(RAW_URI="/whoami", HTTP_X_FORWARDED_HOST="public.example.test:443", HTTP_X_FORWARDED_PROTO="https")
    assert binding_from_environ(env, b"", BindingConfig(trust_forwarded=True)).host == "public.example.test"


def test_only_the_nearest_proxys_forwarded_value_is_trusted() -> None:
    env = environ(RAW_URI="/whoami", HTTP_X_FORWARDED_HOST="spoofed.example.test, public.example.test")
    assert binding_from_environ(env, b"", BindingConfig(trust_forwarded=True)).host == "public.example.test"


def test_public_url_replaces_host_and_puts_back_the_stripped_prefix() -> None:
    config = BindingConfig.create("https://API.example.com/prefix/")
    binding = binding_from_environ(environ(RAW_URI="/whoami?x=1", QUERY_STRING="x=1", **FORWARDED), b"", config)
    assert (binding.host, binding.path) == ("api.example.com", "/prefix/whoami?x=1")


def test_public_url_without_a_path_keeps_the_request_path() -> None:
    config = BindingConfig.create("http://api.example.com:8080")
    binding = binding_from_environ(environ(RAW_URI="/whoami"), b"", config)
    assert (binding.host, binding.path) == ("api.example.com:8080", "/whoami")


@pytest.mark.parametrize("url", ["ftp://x.test", "/relative", "https://", "https://x.test/?q=1",
                                 "https://u:p@x.test", "https://x.test:99999"])
def test_invalid_public_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        PublicUrl.parse(url)


_segment = st.text(st.sampled_from("abcXYZ019-._~!$&'()*+,;=:@%"), min_size=1, max_size=12)


@given(segments=st.lists(_segment, min_size=1, max_size=4), query=st.text("abc=&%20", max_size=10),
       port=st.sampled_from([None, 80, 8080]))
def test_client_and_server_agree_on_what_raw_uri_says(segments: list[str], query: str, port: int | None) -> None:
    path = "/" + "/".join(segments) + (f"?{query}" if query else "")
    host_header = canonical_host("http", "api.example.test", port)
    env = environ(RAW_URI=path, HTTP_HOST=host_header, QUERY_STRING=query)
    assert binding_from_environ(env, b"") == RequestBinding.for_http("GET", host_header, path, b"")
