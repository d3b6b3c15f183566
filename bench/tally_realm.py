"""A tallystick realm for the benchmark: its store, principals, `tally kdc serve`, and fresh request bodies.

The realm is created the way an operator does it (``tally kdc init``); the
principals are added through ``PrincipalDB``, or, for the scale runs,
written in bulk as real ``PrincipalRecord`` JSON with keys wrapped by the
realm's master key (``populate``), then read back through ``PrincipalDB`` to
prove the KDC can use them.  Client keys are derived from the name with a
per-run secret, so a million clients need no key list in memory.

The KDC is ``tally kdc serve`` (gunicorn, 2 workers).  Its rate limits
still count every request (one INCR+EXPIRE transaction per limit) but must
not refuse a load generator: the KDC trusts one proxy hop
(``TALLY_TRUST_FORWARDED``) and each request carries its own loopback
address in ``X-Forwarded-For`` (per-address limit), and the limits' settings
are raised to their maximum where the KDC reads them (per-principal limits).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import requests

from client_sdk.flow import Credential, finish_as_exchange, start_as_exchange, start_tgs_exchange
from client_sdk.kdc_client import KdcClient
from kdc.master_key import MasterKeyring, load_master_key_file
from kdc.principal_db import PrincipalDB
from kdc.records import KeyVersion, PrincipalKind, PrincipalRecord
from tally_protocol.encoding import b64encode
from tally_protocol.keys import Key
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import write_keytab

from .procs import Server, free_port, http_ok, wait_until
from .redis_server import RedisServer

REALM = "BENCH.TEST"
SERVICE = Principal("api", REALM)
#: Every tenth bulk principal is a service, the rest clients.
SERVICE_EVERY = 10
CHUNK = 5000
#: Settings of the KDC's rate limits (tally_runtime/settings.py), set to their highest accepted value.
RATE_LIMITS = ("TALLY_RATE_LIMIT_REQUESTS", "TALLY_AS_RATE_LIMIT", "TALLY_TGS_RATE_LIMIT")
RATE_LIMIT_MAX = 1_000_000
T = TypeVar("T")


def bulk_name(i: int) -> str:
    return f"s{i:07d}" if i % SERVICE_EVERY == 0 else f"u{i:07d}"


class TallyRealm:
    def __init__(self, workdir: Path, redis: RedisServer) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.redis = redis
        self.master_key_file = self.dir / "master.key"
        self.keytab = self.dir / "api.keytab"
        self.secret = os.urandom(32)  # derives every client key of this run
        self.clients: list[Principal] = []
        self.population = 0
        self.kdc: Server | None = None
        self.kdc_url = ""
        self._logins = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "PROMETHEUS_"))}
        env.update(TALLY_REDIS_URL=self.redis.url, TALLY_REALM=REALM, TALLY_MASTER_KEY_FILE=str(self.master_key_file),
                   TALLY_CCACHE=str(self.dir / "ccache.json"), HOME=str(self.dir),
                   TALLY_TRUST_FORWARDED="true", **dict.fromkeys(RATE_LIMITS, str(RATE_LIMIT_MAX)))
        return env

    def client_key(self, name: Principal) -> Key:
        """The client's key as the client holds it (kvno 0: "my current key")."""
        return Key(hmac.new(self.secret, str(name).encode(), hashlib.sha256).digest(), 0)

    def create(self, clients: int = 16) -> TallyRealm:
        """``tally kdc init``, then ``clients`` clients and the service ``api`` (keytab written)."""
        result = subprocess.run([sys.executable, "-m", "tally_cli", "kdc", "init", "--realm", REALM], env=self.env(),
                                cwd=self.dir, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"tally kdc init failed: {result.stdout}{result.stderr}")
        keyset = self.db().add_service(SERVICE)
        write_keytab(self.keytab, SERVICE, keyset)
        self.population = self.populate(0, clients)
        self.clients = [Principal(bulk_name(i), REALM) for i in range(clients) if i % SERVICE_EVERY]
        return self

    def ring(self) -> MasterKeyring:
        return load_master_key_file(self.master_key_file)

    def db(self) -> PrincipalDB:
        return PrincipalDB(self.redis.client(), REALM, self.ring())

    def populate(self, start: int, stop: int) -> int:
        """Write principals ``start..stop`` as real records, pipelined; returns ``stop``.

        Layout from ``kdc/principal_store.py``: ``tally:{REALM}:p:<name>`` and the ``idx`` sorted set.
        """
        master = self.ring().current
        client = self.redis.client()
        now = int(time.time())
        prefix = f"tally:{{{REALM}}}"
        for lo in range(start, stop, CHUNK):
            pipe = client.pipeline(transaction=False)
            names = []
            for i in range(lo, min(stop, lo + CHUNK)):
                name = bulk_name(i)
                p = Principal(name, REALM)
                kind = PrincipalKind.SERVICE if i % SERVICE_EVERY == 0 else PrincipalKind.CLIENT
                key = Key(self.client_key(p).material, 1)
                record = PrincipalRecord(p, kind, False, now, now, None,
                                         (KeyVersion(1, master.wrap(REALM, name, key, os.urandom), now),))
                pipe.set(f"{prefix}:p:{name}", record.to_json())
                names.append(name)
            pipe.zadd(f"{prefix}:idx", dict.fromkeys(names, 0))
            pipe.execute()
        client.close()
        # Read a few back through the project's own store: the KDC will find and unwrap them.
        db = self.db()
        for i in {start, (start + stop) // 2, stop - 1}:
            p = Principal(bulk_name(i), REALM)
            if db.unwrap_current(db.get(p)).material != self.client_key(p).material:
                raise RuntimeError(f"bulk record {p} does not unwrap to its key")
        self.population = max(self.population, stop)
        return stop

    def start_kdc(self, workers: int = 2) -> Server:
        port = free_port()
        self.kdc_url = f"http://127.0.0.1:{port}"
        self.kdc = Server("tally-kdc", [sys.executable, "-m", "tally_cli", "kdc", "serve", "--host", "127.0.0.1",
                                        "--port", str(port), "--workers", str(workers)],
                          self.dir / "kdc.log", env=self.env(), cwd=self.dir).start()
        wait_until(lambda: http_ok(self.kdc_url + "/healthz"), "tally kdc serve")
        # /healthz answers as soon as one worker does: wait for every worker to have built its app.
        wait_until(lambda: len(self.kdc.pids()) >= workers + 1 if self.kdc else False, "gunicorn workers")
        return self.kdc

    def stop(self) -> None:
        if self.kdc is not None:
            self.kdc.stop()

    # -- fresh requests -----------------------------------------------------------

    def as_bodies(self, n: int, clients: Sequence[Principal]) -> list[str]:
        """``n`` distinct pre-authenticated AS requests (``POST /v1/as`` bodies), round-robin over ``clients``."""
        now = time.time()
        return [json.dumps({"as_req": b64encode(start_as_exchange(c, self.client_key(c), now=now,
                                                                  rng=os.urandom).request_bytes)})
                for c in _cycle(clients, n)]

    def login(self, client: Principal) -> Credential:
        """A TGT through the running KDC (one AS exchange over HTTP)."""
        self._logins += 1
        session = requests.Session()
        session.headers["X-Forwarded-For"] = f"127.254.{self._logins // 256 % 256}.{self._logins % 256}"
        pending = start_as_exchange(client, self.client_key(client), now=time.time(), rng=os.urandom)
        return finish_as_exchange(pending, KdcClient(self.kdc_url, session=session).as_exchange(pending.request_bytes))

    def tgs_bodies(self, n: int, tgts: Sequence[Credential], services: Sequence[Principal]) -> list[str]:
        """``n`` distinct TGS requests (fresh authenticators), cycling over TGTs and target services."""
        now = time.time()
        return [json.dumps({"tgs_req": b64encode(start_tgs_exchange(tgt, svc, now=now, rng=os.urandom)
                                                  .request_bytes)})
                for tgt, svc in zip(_cycle(tgts, n), _cycle(services, n), strict=True)]


def _cycle(items: Sequence[T], n: int) -> Iterator[T]:
    for i in range(n):
        yield items[i % len(items)]
