"""The KDC refuses oversized bodies with 413 REQUEST_TOO_LARGE, without reading them whole."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import redis
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from kdc.app import create_app
from kdc.master_key import MasterKey
from tests.kdc.conftest import FixedClock, Realm, settings_for


class Unreadable(io.RawIOBase):
    """A body that must not be read: the refusal has to come from Content-Length alone."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the KDC read a body it should have refused unread")


def test_an_oversized_body_is_refused_from_content_length_before_it_is_read(realm: Realm) -> None:
    environ = EnvironBuilder(path="/v1/as", method="POST", content_type="application/json").get_environ()
    environ.update({"wsgi.input": Unreadable(), "CONTENT_LENGTH": str(10**9)})
    response = Response.from_app(realm.app, environ, buffered=True)
    body = response.get_json()
    assert (response.status_code, body["error"], body["limit"]) == (413, "REQUEST_TOO_LARGE", 64 * 1024)
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_a_chunked_body_is_refused_once_it_passes_the_limit(realm: Realm) -> None:
    stream = io.BytesIO(b'{"as_req": "' + b"A" * 100_000 + b'"}')
    response = realm.http.post("/v1/as", input_stream=stream, content_type="application/json",
                               environ_overrides={"wsgi.input_terminated": True},
                               headers={"Transfer-Encoding": "chunked"})
    assert (response.status_code, response.get_json()["error"]) == (413, "REQUEST_TOO_LARGE")
    assert stream.tell() <= 64 * 1024 + 65536  # read up to the limit (one chunk beyond at most), not to the end


def test_the_limit_comes_from_settings(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                       tmp_path: Any) -> None:
    settings = replace(settings_for(tmp_path), kdc_max_body_bytes=2048)
    app = create_app({"TESTING": True}, settings=settings, redis_client=fake_redis, master_key=master_key,
                     clock=clock)
    response = app.test_client().post("/v1/as", json={"as_req": "A" * 3000})
    assert (response.status_code, response.get_json()["limit"]) == (413, 2048)
