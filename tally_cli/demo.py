"""``tally demo``: the whole system in one process, explained step by step.

A KDC and a demo relying service run on loopback in threads over the
embedded store; a client logs in, makes an authenticated request, then an
attacker's replay and tampering are shown rejected.  Exits 0 only when every
step behaved as the protocol says it must.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tally_protocol.binding import RequestBinding, canonical_host
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import write_keytab
from tally_runtime.logs import configure
from tally_runtime.redis_settings import RedisSettings
from tally_runtime.redis_store import EMBEDDED_NOTICE, connect
from tally_runtime.settings import Settings

REALM = "DEMO.TEST"


class DemoFailed(click.ClickException):
    pass


class _QuietHandler(WSGIRequestHandler):
    """The demo narrates each request itself; access lines would only interleave."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a daemon thread; yields its base URL."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def _step(n: int, text: str) -> None:
    click.echo(click.style(f"\n[{n}] {text}", bold=True))


def _ok(text: str) -> None:
    click.echo("    " + click.style("✓ ", fg="green") + text)


def _expect_refusal(response: requests.Response, code: str, what: str) -> None:
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    if response.status_code != 401 or body.get("error") != code:
        raise DemoFailed(f"{what}: expected 401 {code}, got {response.status_code} {body}")
    _ok(f"{what}: refused with {response.status_code} {code}: {body.get('message')}")
    click.echo(f"      WWW-Authenticate: {response.headers.get('WWW-Authenticate')}")


@click.command()
def demo() -> None:
    """Run a KDC, a relying service and a client in one process and show the protocol at work."""
    from client_sdk import Client
    from client_sdk.flow import make_ap_request
    from kdc.app import create_app as create_kdc_app
    from kdc.master_key import create_master_key_file
    from kdc.principal_db import PrincipalDB
    from relying_service.demo_app import create_demo_app

    # Audit and refusal logs go to stderr as JSON in servers; here the steps say it.
    configure(level=logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="tally-demo-"))
    click.echo(click.style("tallystick demo", bold=True) + f" (realm {REALM}, files in {workdir})")
    click.echo(f"    note: {EMBEDDED_NOTICE}")

    _step(1, "Provision the realm: master key, ticket-granting key, a client and a service")
    settings = Settings(redis=RedisSettings(), realm=REALM, kdc_url=None, ccache=workdir / "ccache.json",
                        master_key_file=workdir / "master.key")
    store = connect(settings.redis)
    master_key = create_master_key_file(settings.master_key_file)
    db = PrincipalDB(store, REALM, master_key)
    db.init_realm()
    alice, api = Principal("alice", REALM), Principal("api", REALM)
    alice_keys = db.add_client("alice")
    assert alice_keys is not None
    write_keytab(workdir / "alice.key", alice, alice_keys)
    write_keytab(workdir / "api.keytab", api, db.add_service("api"))
    _ok(f"master key {settings.master_key_file} (0600); principals krbtgt/{REALM}, {alice}, {api}")
    _ok("alice's 256-bit key -> alice.key, the service's keys -> api.keytab (both 0600)")

    with _serving(create_kdc_app(settings=settings, redis_client=store, master_key=master_key)) as kdc_url, \
            _serving(create_demo_app(keytab_path=workdir / "api.keytab", settings=settings)) as api_url:
        _ok(f"KDC on {kdc_url}, demo service on {api_url}")

        _step(2, "alice logs in: AS exchange (pre-authenticated, X25519 forward secrecy)")
        client = Client(kdc_url, str(alice), key_file=workdir / "alice.key", services={api_url: "api"})
        tgt = client.login()
        _ok(f"ticket-granting ticket for {tgt.service}, valid until "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(tgt.endtime))}, flags {tgt.flags.name}")

        _step(3, "alice calls GET /whoami: TGS exchange for a service ticket, then an AP request")
        response = client.get(f"{api_url}/whoami")
        if response.status_code != 200 or response.json().get("principal") != str(alice):
            raise DemoFailed(f"authenticated request failed: {response.status_code} {response.text}")
        _ok(f"200 {response.json()}")
        _ok("the service proved itself: Authentication-Info verified against this response's status and body")

        _step(4, "An attacker captures a signed POST /echo and sends it again")
        cred = client.service_ticket("api")
        host = canonical_host("http", "127.0.0.1", int(api_url.rsplit(":", 1)[1]))
        body = b'{"transfer": 10}'
        ctx = make_ap_request(cred, RequestBinding.for_http("POST", host, "/echo", body),
                              now=time.time() + client.offset, rng=os.urandom)
        headers = {"Authorization": ctx.authorization, "Content-Type": "application/json"}
        first = requests.post(f"{api_url}/echo", data=body, headers=headers, timeout=5)
        ctx.check_reply(first.headers.get("Authentication-Info"), status=first.status_code, body=first.content)
        _ok(f"original request: {first.status_code} {first.content.decode()}")
        _expect_refusal(requests.post(f"{api_url}/echo", data=body, headers=headers, timeout=5),
                        "REPLAY_DETECTED", "the same request replayed")

        _step(5, "The attacker alters a captured request before it reaches the service")
        ctx = make_ap_request(cred, RequestBinding.for_http("POST", host, "/echo", body),
                              now=time.time() + client.offset, rng=os.urandom)
        headers = {"Authorization": ctx.authorization, "Content-Type": "application/json"}
        _expect_refusal(requests.post(f"{api_url}/echo", data=b'{"transfer": 10000}', headers=headers, timeout=5),
                        "BINDING_MISMATCH", "body changed")
        ctx = make_ap_request(cred, RequestBinding.for_http("POST", host, "/echo", body),
                              now=time.time() + client.offset, rng=os.urandom)
        headers = {"Authorization": ctx.authorization, "Content-Type": "application/json"}
        _expect_refusal(requests.post(f"{api_url}/echo?to=mallory", data=body, headers=headers, timeout=5),
                        "BINDING_MISMATCH", "path changed")
        _expect_refusal(requests.get(f"{api_url}/whoami", timeout=5), "AUTHENTICATION_REQUIRED",
                        "no ticket at all")

    click.echo(click.style("\nAll steps behaved as specified.", fg="green", bold=True))
