"""``Client``: tickets on demand, and HTTP requests signed with them.

Rules this file keeps:

* time is ``clock() + offset``.  ``offset`` is learnt from the KDC's
  authenticated replies (the ``starttime`` it sealed), and from a
  ``CLOCK_SKEW`` answer's ``server_time``.  That hint is unauthenticated, so a
  service's hint may move the clock at most ``MAX_HINT_SHIFT_S`` away from
  the KDC-authenticated offset: a forged hint cannot make the client sign
  requests for a time far from the realm's;
* the service principal comes from the caller or the ``services`` map,
  never from the server (a server naming the principal could have the client
  fetch tickets for a service of the attacker's choosing);
* a TGT is renewed ``renew_margin_s`` before it ends when it is renewable;
  when it cannot be renewed the client logs in again if it holds the key, and
  otherwise tells the user to run ``tally login``;
* service tickets are cached (memory, and the credential cache when one is
  configured) until near their end; the long-term key never leaves memory;
* a response is returned only when the service proved itself
  (``response_check``); every retry is bounded to one;
* one logical operation, one request id (``X-Request-Id``): ``login``,
  ``tgt`` and ``service_ticket`` bind the caller's id (``request_id_scope``)
  or a fresh one, so every KDC request they make, retries included, carries
  the same id, and a service request signed with a new ticket shares its id
  with the TGS exchange that got the ticket.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests

from tally_protocol import Random
from tally_protocol.binding import RequestBinding, canonical_host
from tally_protocol.crypto import derive_password_key
from tally_protocol.errors import (
    AuthenticationRequired,
    ClockSkew,
    ConfigurationError,
    MutualAuthFailed,
    PolicyRefused,
    RateLimited,
    StoreUnavailable,
    TicketError,
    TicketExpired,
)
from tally_protocol.keys import Key
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import read_keytab
from tally_runtime.request_ids import request_id_scope

from .ccache import CredentialCache
from .flow import (
    ApContext,
    Credential,
    finish_as_exchange,
    finish_tgs_exchange,
    make_ap_request,
    start_as_exchange,
    start_tgs_exchange,
)
from .kdc_client import KdcClient
from .response_check import Retry, Verdict, wait_for

if TYPE_CHECKING:
    from .httpx_auth import TallyHttpxAuth
    from .requests_auth import TallyAuth

T = TypeVar("T")

#: (connect, read) seconds for requests to relying services.
SERVICE_TIMEOUT = (5.0, 60.0)
#: Long-term keys are used with kvno 0: "the principal's current key" (wire contract).
CLIENT_KVNO = 0
#: How far an unauthenticated CLOCK_SKEW hint may move us from the KDC's authenticated time.
MAX_HINT_SHIFT_S = 300
#: The KDC's sealed times are whole seconds and arrive after a network delay.
KDC_SYNC_TOLERANCE_S = 2


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` in canonical form (lower case, default port dropped)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"invalid URL {url!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme.lower()}://{canonical_host(parts.scheme, parts.hostname, port)}"


class Client:
    """A client principal's tickets, and requests authenticated with them."""

    def __init__(
        self,
        kdc_url: str | None = None,
        principal: str | Principal | None = None,
        *,
        key_file: Path | str | None = None,
        password: str | None = None,
        ccache: Path | str | CredentialCache | None = None,
        services: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        rng: Random = os.urandom,
        renew_margin_s: float = 60,
        session: requests.Session | None = None,
        max_retry_wait_s: float = 10,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if key_file is not None and password is not None:
            raise ConfigurationError("pass a key file or a password, not both")
        if key_file is None and password is None and ccache is None:
            raise ConfigurationError("no credentials: pass key_file, password or ccache (after `tally login`)")
        self._clock = clock
        self._rng = rng
        self.offset = 0.0
        #: Offset measured from the last authenticated KDC reply (None until one arrives).
        self._kdc_offset: float | None = None
        self.renew_margin_s = renew_margin_s
        #: The longest ``Retry-After`` of a 503 (store outage, replay cache recovering) the
        #: client waits out before its one retry with a fresh authenticator; longer ones raise.
        self.max_retry_wait_s = max_retry_wait_s
        self._sleep = sleep
        self._session = session or requests.Session()
        self._lock = threading.RLock()
        self._key: Key | None = None
        self._password = password
        self._ccache = CredentialCache(ccache) if isinstance(ccache, (str, Path)) else ccache

        keytab_principal: Principal | None = None
        if key_file is not None:
            keytab_principal, keyset = read_keytab(key_file)
            self._key = Key(keyset.current.material, CLIENT_KVNO)
        cached_client: Principal | None = None
        if self._ccache is not None:
            try:
                cached_client = self._ccache.client
            except ConfigurationError:
                if not self._can_login():
                    raise
                self._ccache.clear()  # a damaged cache is replaced by the next login, as kinit does
        self.principal = self._resolve_principal(principal, keytab_principal, cached_client)
        if keytab_principal is not None and keytab_principal != self.principal:
            raise ConfigurationError(f"the key file holds the key of {keytab_principal}, not {self.principal}")
        self.kdc_url = kdc_url or (self._ccache.kdc_url if self._ccache is not None else None)
        self._kdc: KdcClient | None = None
        self._creds: dict[Principal, Credential] = {}
        self._services = {origin_of(origin): name for origin, name in (services or {}).items()}

    @staticmethod
    def _resolve_principal(given: str | Principal | None, keytab: Principal | None,
                           cached: Principal | None) -> Principal:
        if isinstance(given, Principal):
            return given
        if given is not None:
            realm = keytab.realm if keytab else cached.realm if cached else None
            return Principal.parse(given, default_realm=realm)
        if keytab is not None:
            return keytab
        if cached is not None:
            return cached
        raise ConfigurationError("no client principal: pass principal= or log in with `tally login` first")

    def __repr__(self) -> str:
        return f"Client(principal={str(self.principal)!r}, kdc_url={self.kdc_url!r})"

    # -- time ------------------------------------------------------------------

    def now(self) -> float:
        """The local clock corrected by what the KDC and services told us."""
        return self._clock() + self.offset

    def _correct_clock(self, server_time: object, *, from_kdc: bool = False) -> bool:
        """Adopt an unauthenticated ``server_time`` hint.

        A service's hint must agree with the KDC's last authenticated time; the
        KDC's own hint is taken as is (the reply that follows re-authenticates it).
        """
        if not isinstance(server_time, int) or isinstance(server_time, bool):
            return False
        offset = server_time - self._clock()
        if not from_kdc and self._kdc_offset is not None and abs(offset - self._kdc_offset) > MAX_HINT_SHIFT_S:
            return False
        self.offset = offset
        return True

    def _learn_kdc_time(self, cred: Credential) -> Credential:
        """The KDC sealed ``starttime`` (its clock, whole seconds): an authenticated time sample."""
        self._kdc_offset = cred.starttime - self._clock()
        if abs(self._kdc_offset - self.offset) > KDC_SYNC_TOLERANCE_S:
            self.offset = self._kdc_offset
        return cred

    def _with_clock_retry(self, attempt: Callable[[], Credential]) -> Credential:
        """Run a KDC exchange; on CLOCK_SKEW with ``server_time`` correct the offset and run it once more.

        A lying hint only makes the retry fail: the KDC checks the time itself,
        and the reply that succeeds carries the authenticated time.
        """
        try:
            return self._learn_kdc_time(self._with_wait_retry(attempt))
        except ClockSkew as err:
            if not self._correct_clock(err.data.get("server_time"), from_kdc=True):
                raise
        return self._learn_kdc_time(self._with_wait_retry(attempt))

    def _with_wait_retry(self, attempt: Callable[[], Credential]) -> Credential:
        """On a KDC's 503 (its store or replay cache recovering) or 429 (a rate limit) with a short
        ``Retry-After``, wait it out and run the exchange once more: a fresh request, a fresh
        timestamp, the same request id."""
        try:
            return attempt()
        except (StoreUnavailable, RateLimited) as err:
            wait = wait_for(err, self.max_retry_wait_s)
            if wait is None:
                raise
            self._sleep(wait)
        return attempt()

    # -- credentials -----------------------------------------------------------

    def _kdc_client(self) -> KdcClient:
        if self._kdc is None:
            if not self.kdc_url:
                raise ConfigurationError("no KDC URL: pass kdc_url (the CLI reads TALLY_KDC_URL or --kdc)")
            self._kdc = KdcClient(self.kdc_url, session=self._session)
        return self._kdc

    def _can_login(self) -> bool:
        return self._key is not None or self._password is not None

    def _long_term_key(self) -> Key:
        if self._key is None and self._password is not None:
            params = self._kdc_client().password_params(self.principal)
            self._key = Key(derive_password_key(self._password, params), CLIENT_KVNO)
            self._password = None  # the derived key is all we need from now on
        if self._key is None:
            raise ConfigurationError(f"no key file or password for {self.principal}: cannot log in")
        return self._key

    def _lookup(self, service: Principal) -> Credential | None:
        cred = self._creds.get(service)
        if cred is None and self._ccache is not None and self._ccache.client == self.principal:
            cred = self._ccache.get(service)
            if cred is not None:
                self._creds[service] = cred
        return cred if cred is not None and cred.client == self.principal else None

    def _save(self, cred: Credential) -> None:
        self._creds[cred.service] = cred
        # The cache holds one principal's credentials; login() initialises it for ours.
        if self._ccache is not None and self._ccache.client == self.principal:
            self._ccache.put(cred)

    def _forget(self, service: Principal) -> None:
        self._creds.pop(service, None)
        if self._ccache is not None and self._ccache.client == self.principal:
            self._ccache.remove(service)

    def login(self) -> Credential:
        """AS exchange with the long-term key: a fresh TGT (stored in the ccache, if any)."""
        with self._lock, request_id_scope():
            key = self._long_term_key()

            def attempt() -> Credential:
                pending = start_as_exchange(self.principal, key, now=self.now(), rng=self._rng)
                return finish_as_exchange(pending, self._kdc_client().as_exchange(pending.request_bytes))

            tgt = self._with_clock_retry(attempt)
            self._creds.clear()  # a new login starts a new cache, as kinit does
            if self._ccache is not None:
                self._ccache.initialize(self.principal, self.kdc_url)
            self._save(tgt)
            return tgt

    def tgt(self) -> Credential:
        """A usable ticket-granting ticket: cached, renewed, or from a new login."""
        with self._lock, request_id_scope():
            tgt = self._lookup(Principal.tgs(self.principal.realm))
            now = self.now()
            if tgt is not None and tgt.valid_at(now, margin_s=self.renew_margin_s):
                return tgt
            failure: Exception | None = None
            if tgt is not None and tgt.renewable_at(now) and tgt.renew_till > tgt.endtime:
                try:
                    return self._renew(tgt)
                except (TicketError, PolicyRefused) as err:
                    failure = err
            if self._can_login():
                return self.login()
            if tgt is None:
                raise AuthenticationRequired(
                    f"no ticket-granting ticket for {self.principal} in the credential cache; run `tally login`"
                )
            if failure is None and tgt.valid_at(self.now()):
                return tgt  # near its end, not renewable, no key: use it while it lasts
            raise TicketExpired(
                f"the ticket-granting ticket of {self.principal} expired at {_utc(tgt.endtime)}; "
                "run `tally login` again"
            ) from failure

    def _renew(self, tgt: Credential) -> Credential:
        def attempt() -> Credential:
            pending = start_tgs_exchange(tgt, tgt.service, now=self.now(), rng=self._rng, renew=True)
            return finish_tgs_exchange(pending, self._kdc_client().tgs_exchange(pending.request_bytes))

        renewed = self._with_clock_retry(attempt)
        self._save(renewed)
        return renewed

    def service_principal(self, service: str | Principal) -> Principal:
        """A service name, bare names taking the client's realm."""
        if isinstance(service, Principal):
            return service
        return Principal.parse(service, default_realm=self.principal.realm)

    def service_ticket(self, service: str | Principal) -> Credential:
        """A ticket for ``service``: cached until ``renew_margin_s`` before its end, else from the TGS."""
        principal = self.service_principal(service)
        with self._lock, request_id_scope():
            cred = self._lookup(principal)
            if cred is not None and cred.valid_at(self.now(), margin_s=self.renew_margin_s):
                return cred
            tgt = self.tgt()
            if cred is not None and cred.valid_at(self.now()) and cred.endtime >= tgt.endtime:
                return cred  # the TGT cannot give a longer one
            return self._fetch_service_ticket(principal, tgt)

    def _fetch_service_ticket(self, service: Principal, tgt: Credential) -> Credential:
        def exchange(with_tgt: Credential) -> Credential:
            def attempt() -> Credential:
                pending = start_tgs_exchange(with_tgt, service, now=self.now(), rng=self._rng)
                return finish_tgs_exchange(pending, self._kdc_client().tgs_exchange(pending.request_bytes))
            return self._with_clock_retry(attempt)

        try:
            cred = exchange(tgt)
        except TicketError as err:  # the KDC no longer accepts this TGT
            self._forget(tgt.service)
            if not self._can_login():
                raise TicketExpired(
                    f"the KDC refused the ticket-granting ticket of {self.principal} ({err.code}); "
                    "run `tally login` again"
                ) from err
            tgt = self.login()
            cred = exchange(tgt)
        if cred.endtime > tgt.endtime:
            raise MutualAuthFailed("the KDC issued a service ticket that outlives its ticket-granting ticket")
        self._save(cred)
        return cred

    def drop_ticket(self, service: str | Principal) -> None:
        """Forget the cached ticket for ``service`` (the service refused it)."""
        with self._lock:
            self._forget(self.service_principal(service))

    # -- signing ---------------------------------------------------------------

    def service_for(self, url: str, service: str | None = None) -> str:
        """The service principal for ``url``: the caller's, else the ``services`` map's."""
        if service:
            return service
        origin = origin_of(url)
        try:
            return self._services[origin]
        except KeyError:
            raise ConfigurationError(
                f"no service principal for {origin}: pass service= or add {origin!r} to services"
            ) from None

    def sign(self, service: str, binding: RequestBinding) -> ApContext:
        """An ``Authorization`` header for the request ``binding`` describes, and what checks the reply."""
        cred = self.service_ticket(service)
        return make_ap_request(cred, binding, now=self.now(), rng=self._rng)

    def sign_retry(self, service: str, binding: RequestBinding, verdict: Verdict) -> ApContext:
        """Act on a retry verdict (new ticket or corrected clock), then sign the request again."""
        if verdict.retry is Retry.CORRECT_CLOCK and not self._correct_clock(verdict.server_time):
            # The hint disagrees with the last authenticated KDC time: measure it
            # again with a fresh ticket (a TGS exchange), then judge the hint.
            self.drop_ticket(service)
            self.service_ticket(service)
            if not self._correct_clock(verdict.server_time):
                raise ClockSkew(
                    "the service's clock disagrees with the KDC's by more than the skew window; "
                    "its time hint was not adopted", server_time=verdict.server_time,
                )
        elif verdict.retry is Retry.NEW_TICKET:
            self.drop_ticket(service)
        elif verdict.retry is Retry.AFTER_WAIT:
            self._sleep(verdict.wait_s)  # the service's Retry-After, bounded by max_retry_wait_s
        return self.sign(service, binding)

    # -- HTTP ------------------------------------------------------------------

    def auth(self, service: str | None = None) -> TallyAuth:
        """A ``requests`` auth plug-in; without ``service`` the ``services`` map names it per URL."""
        from .requests_auth import TallyAuth

        return TallyAuth(self, service)

    def httpx_auth(self, service: str | None = None) -> TallyHttpxAuth:
        """An ``httpx.Auth`` plug-in (sync and async)."""
        from .httpx_auth import TallyHttpxAuth

        return TallyHttpxAuth(self, service)

    def request(self, method: str, url: str, *, service: str | None = None, **kwargs: Any) -> requests.Response:
        """An authenticated request; redirects are not followed (a signature names one URL)."""
        auth = self.auth(self.service_for(url, service))
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", SERVICE_TIMEOUT)
        return self._session.request(method, url, auth=auth, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("OPTIONS", url, **kwargs)
