"""One verifying process: pre-generates fresh requests, then times only the accepting side.

Run by ``verify_bench`` as ``python -m bench.verify_worker CONTENDER ...``, one
process per contender (each with its own environment: MIT's replay cache type
is read from ``KRB5RCACHETYPE`` when the acceptor's credentials are made).
It prints ``ready`` once its requests exist, waits for a line on stdin (so
several replicas start together), verifies until it runs out of requests or
``--seconds`` pass, and prints one JSON line.  Every request is used once.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV

from kdc.revocation import RevocationList
from relying_service.verifier import Verifier
from tally_protocol.binding import RequestBinding
from tally_protocol.messages import parse_authorization
from tally_protocol.principal import Principal
from tally_protocol.replay import REPLAY_KEY_SIZE
from tally_protocol.ticket_cache import TicketCache
from tally_protocol.verify import VerifyPolicy, verify_ap_request
from tally_runtime.keytab_file import read_keytab
from tally_runtime.replay_cache import RedisReplayCache

from .redis_server import store_client
from .tickets import service_ticket

HOST = "api.bench.test"
PATH = "/data"
REPLY_BODY = b'{"message":"hello"}'
#: A request to verify: a callable that raises when it is refused.
Check = Callable[[], object]


@dataclass
class Args:
    contender: str
    n: int
    seconds: float
    redis_url: str
    keytab: Path


def _tally_checks(args: Args, *, reply: bool, group_commit: bool = True) -> Iterator[Check]:
    """``Verifier.verify`` as ``TicketAuth`` builds it: keytab file, Redis replay cache, revocation list."""
    from client_sdk.flow import make_ap_request

    service, keyset = read_keytab(args.keytab)
    cred = service_ticket(Principal("alice", service.realm), service, keyset.current)
    headers = [make_ap_request(cred, RequestBinding.for_http("GET", HOST, PATH, b""), now=time.time(),
                               rng=os.urandom).authorization for _ in range(args.n)]
    store = store_client(args.redis_url)
    verifier = Verifier.from_keytab(args.keytab, replay_cache=RedisReplayCache(store, group_commit=group_commit),
                                    revocation=RevocationList(store, service.realm))

    def check(header: str) -> Check:
        def run() -> object:
            verified = verifier.verify(header, RequestBinding.for_http("GET", HOST, PATH, b""))
            return verifier.reply_header(verified, 200, REPLY_BODY) if reply else verified
        return run

    return (check(h) for h in headers)


def _tally_core_checks(args: Args) -> Iterator[Check]:
    """The pure ``verify_ap_request`` alone, as ``Verifier`` calls it (opened tickets kept, so one ticket costs its
    AEAD once, then the authenticator's AEAD per request): parse, times, binding; no store, no metrics."""
    from client_sdk.flow import make_ap_request

    service, keyset = read_keytab(args.keytab)
    cred = service_ticket(Principal("alice", service.realm), service, keyset.current)
    headers = [make_ap_request(cred, RequestBinding.for_http("GET", HOST, PATH, b""), now=time.time(),
                               rng=os.urandom).authorization for _ in range(args.n)]
    policy = VerifyPolicy()
    tickets = TicketCache()

    def check(header: str) -> Check:
        return lambda: verify_ap_request(parse_authorization(header), service=service, keyset=keyset,
                                         binding=RequestBinding.for_http("GET", HOST, PATH, b""), now=time.time(),
                                         policy=policy, tickets=tickets)

    return (check(h) for h in headers)


def _redis_claim_checks(args: Args) -> Iterator[Check]:
    """``RedisReplayCache.claim`` alone: the replay check's round trip (one EVALSHA)."""
    cache = RedisReplayCache(store_client(args.redis_url))
    keys = [os.urandom(REPLAY_KEY_SIZE) for _ in range(args.n)]

    def check(key: bytes) -> Check:
        def run() -> object:
            if not cache.claim(key, 302_000, ctime=int(time.time()), max_skew_s=300):
                raise RuntimeError("fresh key refused as a replay")
            return None
        return run

    return (check(k) for k in keys)


def _gssapi_checks(args: Args, *, mutual: bool) -> Iterator[Check]:
    """python-gssapi ``accept_sec_context`` on AP-REQs from a krb5 initiator (ccache and keytab from env)."""
    import gssapi
    import gssapi.raw as gss

    from .mit_realm import SERVICE_HOSTBASED

    target = gssapi.Name(SERVICE_HOSTBASED, gssapi.NameType.hostbased_service)
    flags = gss.RequirementFlag.mutual_authentication if mutual else gss.RequirementFlag.integrity
    tokens: list[bytes] = []
    for _ in range(args.n):
        token = gss.init_sec_context(target, mech=gssapi.MechType.kerberos, flags=flags).token
        if token is None:
            raise RuntimeError("the krb5 initiator produced no AP-REQ")
        tokens.append(token)
    acceptor = gssapi.Credentials(usage="accept")

    def check(token: bytes) -> Check:
        def run() -> object:
            result = gss.accept_sec_context(token, acceptor_creds=acceptor)
            if result.more_steps:
                raise RuntimeError("the acceptor wants another round")
            return result
        return run

    return (check(t) for t in tokens)


def _jwt_checks(args: Args) -> Iterator[Check]:
    """PyJWT HS256 decode with expiry and audience checked (it keeps no record: no replay check)."""
    import jwt

    secret = os.urandom(32)
    now = int(time.time())
    tokens = [jwt.encode({"sub": "alice", "aud": "api", "iat": now, "exp": now + 3600, "jti": os.urandom(16).hex()},
                         secret, algorithm="HS256") for _ in range(args.n)]

    def check(token: str) -> Check:
        return lambda: jwt.decode(token, secret, algorithms=["HS256"], audience="api")

    return (check(t) for t in tokens)


def _floor_checks(args: Args, aead: type[AESGCM | AESGCMSIV]) -> Iterator[Check]:
    """The least a ticket scheme must do: open the ticket (service key), then the authenticator under the
    session key it holds, then one ``SET NX PX`` (no MULTI, no marker, no parsing beyond slicing)."""
    store = store_client(args.redis_url)
    service = aead(os.urandom(32))
    items: list[tuple[bytes, bytes, bytes, bytes]] = []
    for _ in range(args.n):
        session_key = os.urandom(32)
        n1, n2 = os.urandom(12), os.urandom(12)
        # Sizes of a real tallystick ticket part (~120 B) and authenticator (~110 B).
        ticket = service.encrypt(n1, session_key + os.urandom(88), b"api@BENCH.TEST")
        auth = aead(session_key).encrypt(n2, os.urandom(16) + os.urandom(94), None)
        items.append((n1, ticket, n2, auth))

    def check(item: tuple[bytes, bytes, bytes, bytes]) -> Check:
        n1, ticket, n2, auth = item

        def run() -> object:
            part = service.decrypt(n1, ticket, b"api@BENCH.TEST")
            plain = aead(part[:32]).decrypt(n2, auth, None)
            if not store.set(b"tf:" + plain[:16], b"1", nx=True, px=302_000):
                raise RuntimeError("fresh key refused as a replay")
            return None
        return run

    return (check(i) for i in items)


def _round_trip_checks(args: Args) -> Iterator[Check]:
    """One Redis round trip over a raw socket (``PING``, no client library): the I/O floor of any replay
    cache shared between processes, on this machine's loopback."""
    host, port = args.redis_url.removeprefix("redis://").split("/", 1)[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run() -> object:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        if sock.recv(64) != b"+PONG\r\n":
            raise RuntimeError("unexpected reply to PING")
        return None

    return (run for _ in range(args.n))


def checks_for(args: Args) -> list[Check]:
    makers: dict[str, Callable[[], Iterator[Check]]] = {
        "tally": lambda: _tally_checks(args, reply=False),
        "tally-reply": lambda: _tally_checks(args, reply=True),
        "tally-unbatched": lambda: _tally_checks(args, reply=False, group_commit=False),
        "tally-core": lambda: _tally_core_checks(args),
        "redis-claim": lambda: _redis_claim_checks(args),
        "redis-ping": lambda: _round_trip_checks(args),
        "gssapi": lambda: _gssapi_checks(args, mutual=False),
        "gssapi-mutual": lambda: _gssapi_checks(args, mutual=True),
        "jwt": lambda: _jwt_checks(args),
        "floor-gcm": lambda: _floor_checks(args, AESGCM),
        "floor-gcmsiv": lambda: _floor_checks(args, AESGCMSIV),
    }
    return list(makers[args.contender]())


def _timed(checks: list[Check], deadline: int, latencies: list[int], errors: list[str]) -> None:
    """Time each check until ``deadline`` (ns); any refusal is recorded (and makes the run invalid)."""
    clock = time.perf_counter_ns
    for check in checks:
        t0 = clock()
        try:
            check()
        except Exception as err:  # noqa: BLE001 - any refusal is reported, not raised: it invalidates the run
            errors.append(f"{type(err).__name__}: {err}")
        t1 = clock()
        latencies.append(t1 - t0)
        if t1 > deadline:
            break


def run(checks: list[Check], seconds: float, threads: int = 1) -> dict[str, Any]:
    """Time each check; stop after ``seconds``.  With ``threads`` > 1 the checks are shared among that many
    threads of this process started together (as a threaded server's requests are)."""
    per_thread: list[list[int]] = [[] for _ in range(threads)]
    errors: list[str] = []
    cpu0 = time.process_time()
    start = time.perf_counter_ns()
    deadline = start + int(seconds * 1e9)
    if threads == 1:
        _timed(checks, deadline, per_thread[0], errors)
    else:
        workers = [threading.Thread(target=_timed, args=(checks[i::threads], deadline, per_thread[i], errors))
                   for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    elapsed = (time.perf_counter_ns() - start) / 1e9
    cpu_s = time.process_time() - cpu0
    latencies = sorted(lat for lats in per_thread for lat in lats)
    count = len(latencies)
    return {"count": count, "errors": len(errors), "seconds": elapsed, "rate": (count - len(errors)) / elapsed,
            "cpu_s": cpu_s, "p50_us": latencies[count // 2] / 1e3, "p99_us": latencies[int(count * 0.99)] / 1e3,
            "first_error": errors[0] if errors else ""}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_worker")
    parser.add_argument("contender")
    parser.add_argument("--n", type=int, required=True, help="requests to pre-generate")
    parser.add_argument("--seconds", type=float, required=True, help="stop timing after this long")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--keytab", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1, help="verify from this many threads at once")
    ns = parser.parse_args(argv)
    args = Args(ns.contender, ns.n, ns.seconds, ns.redis_url, ns.keytab)
    checks = checks_for(args)
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps({"contender": args.contender, **run(checks, args.seconds, ns.threads)}), flush=True)


if __name__ == "__main__":
    main()
