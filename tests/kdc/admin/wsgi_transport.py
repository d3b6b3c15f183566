"""A ``requests`` transport that hands requests to a WSGI app in process, and a logged-in admin client.

The SDK's ``Client`` then talks to the KDC app (AS, TGS and the admin API)
exactly as over the network: same bytes, same headers, same binding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import flask
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client as WsgiClient

from client_sdk.client import Client
from kdc.admin.remote import RemoteAdmin
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import write_keytab

BASE_URL = "http://127.0.0.1"


class WsgiAdapter(BaseAdapter):
    def __init__(self, app: flask.Flask) -> None:
        super().__init__()
        self._client = WsgiClient(app)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        answer = self._client.open(parts.path, method=request.method or "GET", query_string=parts.query,
                                   headers=dict(request.headers), data=body, base_url=BASE_URL,
                                   environ_base={"REMOTE_ADDR": "127.0.0.1"})
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response._content = answer.get_data()
        response.url = request.url or ""
        response.request = request
        response.connection = self
        response.reason = answer.status.partition(" ")[2]
        return response

    def close(self) -> None:
        pass


def session_for(app: flask.Flask) -> requests.Session:
    session = requests.Session()
    session.mount(BASE_URL + "/", WsgiAdapter(app))
    return session


def remote_admin(app: flask.Flask, principal: Principal, keys: Keyset, tmp: Path, clock: Any) -> RemoteAdmin:
    """``tally admin --remote`` as ``principal``, whose key file is written under ``tmp``."""
    key_file = tmp / f"{principal.name.replace('/', '_')}.key"
    write_keytab(key_file, principal, Keyset([keys.current]), overwrite=True)
    client = Client(BASE_URL, principal, key_file=key_file, clock=clock, session=session_for(app))
    return RemoteAdmin(BASE_URL, client)
