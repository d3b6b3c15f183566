"""Client traffic for the end-to-end topology tests: signed requests, races and a load loop.

Every request is built by the real client role (``client_sdk.flow``) and sent over real HTTP.
What comes back is an ``Outcome``: the status, the tallystick error code and the latency,
kept per stream so that tests assert on classes of outcomes ("every answer was 200 or 503"),
never on timings.

Relying-service requests are signed for one public name, ``SERVICE_HOST``, and sent to the
replicas with that ``Host`` header, as a load balancer in front of them forwards it: so one
captured request is valid at every replica, which is what a replay across replicas needs.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import urlsplit

from client_sdk import Client, Credential
from client_sdk.flow import make_ap_request, start_as_exchange, start_tgs_exchange
from tally_protocol.binding import RequestBinding
from tally_protocol.encoding import b64encode
from tally_protocol.errors import StoreUnavailable
from tally_protocol.keys import Key
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import read_keytab

#: The relying service's public name: what clients sign and send as Host, whichever replica answers.
SERVICE_HOST = "api.tally.test"
#: No request may take longer: a hung worker shows as a missing answer, not a slow test.
REQUEST_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Request:
    """One HTTP request, exactly as it goes on the wire (so that it can be sent again: a replay)."""

    url: str  # the origin, http://127.0.0.1:port
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Outcome:
    stream: str
    phase: str
    request: Request
    #: None when no HTTP answer came back (timeout, refused connection): never acceptable here.
    status: int | None
    #: The tallystick error code of a refusal, or the exception of a failed exchange.
    error: str | None
    retry_after: str | None
    latency_s: float
    #: The refusal's message, for the failure report.
    message: str | None = None

    @property
    def label(self) -> str:
        """``200``, ``401 REPLAY_DETECTED``, ``503 STORE_UNAVAILABLE``, ``no answer (ReadTimeout)``..."""
        if self.status is None:
            return f"no answer ({self.error})"
        return f"{self.status} {self.error}" if self.error else str(self.status)


def send(req: Request, *, stream: str = "", phase: str = "", timeout: float = REQUEST_TIMEOUT_S,
         connection: http.client.HTTPConnection | None = None) -> Outcome:
    """Send ``req`` (on ``connection`` if given, already connected) and classify the answer."""
    parts = urlsplit(req.url)
    conn = connection or http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(req.method, req.path, body=req.body, headers=req.headers)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as e:
        return Outcome(stream, phase, req, None, type(e).__name__, None, time.monotonic() - started)
    finally:
        conn.close()
    latency = time.monotonic() - started
    error = message = None
    if response.status >= 400:
        try:
            doc = json.loads(body)
            error, message = str(doc["error"]), str(doc.get("message"))
        except (ValueError, KeyError, TypeError):
            error = "(no JSON error code)"
    return Outcome(stream, phase, req, response.status, error, response.getheader("Retry-After"), latency, message)


def race(requests: list[Request], timeout: float = REQUEST_TIMEOUT_S) -> list[Outcome]:
    """Send every request at the same moment: each thread connects first, then all wait on one barrier."""
    barrier = threading.Barrier(len(requests))
    outcomes: list[Outcome | None] = [None] * len(requests)

    def one(i: int, req: Request) -> None:
        parts = urlsplit(req.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
        conn.connect()
        barrier.wait(timeout)
        outcomes[i] = send(req, stream=f"racer{i}", connection=conn, timeout=timeout)

    threads = [threading.Thread(target=one, args=(i, r), daemon=True) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * 2)
    assert all(o is not None for o in outcomes), "a racer did not finish"
    return [o for o in outcomes if o is not None]


class Signer:
    """Fresh, valid requests for alice: to the "api" service replicas, and AS/TGS requests to the KDCs."""

    def __init__(self, client: Client, key_file: str | os.PathLike[str]) -> None:
        self.client = client
        self.cred: Credential = client.service_ticket("api")
        self.tgt: Credential = client.tgt()
        principal, keyset = read_keytab(key_file)
        self.principal: Principal = principal
        self.key = Key(keyset.current.material, 0)  # clients seal with kvno 0, "the current key"

    def service_request(self, url: str, body: bytes | None = None) -> Request:
        """``GET /whoami``, or ``POST /echo`` with ``body``, signed for ``SERVICE_HOST``."""
        method, path = ("GET", "/whoami") if body is None else ("POST", "/echo")
        binding = RequestBinding.for_http(method, SERVICE_HOST, path, body or b"")
        context = make_ap_request(self.cred, binding, now=time.time(), rng=os.urandom)
        return Request(url, method, path, {"Host": SERVICE_HOST, "Authorization": context.authorization}, body or b"")

    def tgs_request(self, kdc_url: str) -> Request:
        pending = start_tgs_exchange(self.tgt, self.cred.service, now=time.time(), rng=os.urandom)
        return _kdc_post(kdc_url, "/v1/tgs", "tgs_req", pending.request_bytes)

    def as_request(self, kdc_url: str) -> Request:
        pending = start_as_exchange(self.principal, self.key, now=time.time(), rng=os.urandom)
        return _kdc_post(kdc_url, "/v1/as", "as_req", pending.request_bytes)


def _kdc_post(kdc_url: str, path: str, field_name: str, message: bytes) -> Request:
    body = json.dumps({field_name: b64encode(message)}).encode()
    return Request(kdc_url, "POST", path, {"Content-Type": "application/json"}, body)


@dataclass
class SdkCall:
    """One ``Client.get`` in the SDK stream: 200, or the typed error it raised."""

    phase: str
    status: int | None
    error: str | None
    #: The ``Retry-After`` waits the client slept through during this call.
    waits: list[float] = field(default_factory=list)


class LoadLoop:
    """Background streams of fresh requests, recorded per stream with the phase they started in.

    * one stream per relying-service replica (``api0``, ``api1``...): a new authenticator each time;
    * one KDC stream (``kdc``): TGS requests, every fourth an AS request, round robin over the KDCs,
      paced to stay far below the KDC's per-address rate limit;
    * one SDK stream (``sdk``): ``Client.get`` round robin over the replicas, the SDK's own retry
      logic included; its ``Retry-After`` waits are recorded per call.
    """

    SERVICE_PAUSE_S = 0.02
    KDC_PAUSE_S = 0.1

    def __init__(self, signer: Signer, kdc_urls: list[str], api_urls: list[str],
                 sdk_client_factory: Callable[[Callable[[float], None]], Client]) -> None:
        self.signer = signer
        self.kdc_urls = kdc_urls
        self.api_urls = api_urls
        self.phase = "before"
        self.outcomes: list[Outcome] = []
        self.sdk_calls: list[SdkCall] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sdk_waits: list[float] = []
        self._sdk = sdk_client_factory(self._sdk_sleep)
        self._threads = [threading.Thread(target=self._service_stream, args=(f"api{i}", url), daemon=True)
                         for i, url in enumerate(api_urls)]
        self._threads += [threading.Thread(target=self._kdc_stream, daemon=True),
                          threading.Thread(target=self._sdk_stream, daemon=True)]

    @property
    def streams(self) -> list[str]:
        return [f"api{i}" for i in range(len(self.api_urls))] + ["kdc", "sdk"]

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(REQUEST_TIMEOUT_S * 2 + 5)
        assert not any(t.is_alive() for t in self._threads), "a load stream is stuck"

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def _service_stream(self, stream: str, url: str) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            req = self.signer.service_request(url, body=None if n % 2 else f"{stream} #{n}".encode())
            self._record(send(req, stream=stream, phase=self.phase))
            self._stop.wait(self.SERVICE_PAUSE_S)

    def _kdc_stream(self) -> None:
        n = 0
        while not self._stop.is_set():
            url = self.kdc_urls[n % len(self.kdc_urls)]
            req = self.signer.as_request(url) if n % 4 == 0 else self.signer.tgs_request(url)
            n += 1
            self._record(send(req, stream="kdc", phase=self.phase))
            self._stop.wait(self.KDC_PAUSE_S)

    def _sdk_sleep(self, seconds: float) -> None:
        self._sdk_waits.append(seconds)
        time.sleep(seconds)  # really waited: the SDK's retry comes after the server's Retry-After

    def _sdk_stream(self) -> None:
        n = 0
        while not self._stop.is_set():
            url = self.api_urls[n % len(self.api_urls)]
            n += 1
            phase, self._sdk_waits = self.phase, []
            try:
                status, error = self._sdk.get(f"{url}/whoami", service="api").status_code, None
            except StoreUnavailable as e:  # after its one retry: a typed error, never a hang
                status, error = None, str(e.code)
            except Exception as e:  # noqa: BLE001 - recorded, and the test fails naming it
                status, error = None, f"{type(e).__name__}: {e}"
            with self._lock:
                self.sdk_calls.append(SdkCall(phase, status, error, self._sdk_waits))
            self._stop.wait(self.SERVICE_PAUSE_S)

    # -- what the streams saw --------------------------------------------------

    def of(self, stream: str, phase: str | None = None) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.stream == stream and (phase is None or o.phase == phase)]

    def saw_refusal(self, stream: str, phase: str) -> bool:
        """Did ``stream`` meet a 503 (for the SDK: wait out a Retry-After, or give up with one) in ``phase``?"""
        if stream == "sdk":
            with self._lock:
                calls = [c for c in self.sdk_calls if c.phase == phase]
            return any(c.waits or c.error for c in calls) or bool(self.phase == phase and self._sdk_waits)
        return any(o.status == 503 for o in self.of(stream, phase))

    def summary(self) -> str:
        """Per stream and phase: how many of each outcome, and the slowest answer."""
        lines = []
        phases = list(dict.fromkeys(o.phase for o in self.outcomes))
        for stream in self.streams[:-1]:
            for phase in phases:
                seen = self.of(stream, phase)
                if seen:
                    slowest = max(o.latency_s for o in seen)
                    lines.append(f"{stream:5} {phase:10} {labels(seen)} slowest {slowest:.2f}s")
                    lines += sorted({f"      {o.label}: {o.message}" for o in seen if o.message})
        for phase in dict.fromkeys(c.phase for c in self.sdk_calls):
            calls = [c for c in self.sdk_calls if c.phase == phase]
            counts: dict[str, int] = {}
            for c in calls:
                key = f"{c.status or c.error} after {len(c.waits)} wait(s)"
                counts[key] = counts.get(key, 0) + 1
            lines.append(f"sdk   {phase:10} {counts}")
        return "\n".join(lines)

    def consecutive_successes(self, stream: str) -> int:
        """How many of ``stream``'s latest answers in a row were 200."""
        if stream == "sdk":
            with self._lock:
                statuses = [c.status for c in self.sdk_calls]
        else:
            statuses = [o.status for o in self.of(stream)]
        run = 0
        for status in reversed(statuses):
            if status != 200:
                break
            run += 1
        return run


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until true; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        time.sleep(interval)


def labels(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How many of each ``Outcome.label``: what assertion messages show."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.label] = counts.get(o.label, 0) + 1
    return counts
