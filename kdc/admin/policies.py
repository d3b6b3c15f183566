"""Ticket and lockout policies: the realm default and per-principal overrides, stored in Redis.

Resolution, field by field: the principal's override, else the realm
default, else the app's configuration (``TALLY_TGT_LIFETIME_S`` ...).  A
service ticket lives at most the shorter of the client's and the service's
service-ticket lifetime (and never beyond its TGT: ``exchange.py``).

Storage: one hash per realm, ``tally:{REALM:policy}``, field ``@default`` for
the realm default and the principal's name for an override (names never
start with ``@``), each a JSON object of the fields it sets.  The KDC's hot
path costs one HMGET per exchange, whether or not any override exists: the
AS exchange reads the default and the client's field, the TGS exchange the
default, the client's and the service's fields (``queue_resolve``, in the
exchange's batch).  What is read is decoded through small in-process maps
keyed by the stored text itself, so a changed policy is a different key:
every exchange applies the policy as stored when it read it, never an older one.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import redis

from tally_protocol.errors import ConfigurationError, InvalidRequest
from tally_protocol.principal import Principal
from tally_runtime.redis_store import store_errors

from ..exchange import TicketPolicy
from ..key_policy import MAX_TICKET_LIFE_S, KeyPolicy
from ..lockout import LockoutPolicy
from ..store_batch import Batch, Reply

DEFAULT_FIELD = "@default"
#: Distinct (default, override) pairs whose resolution is kept; past it the map starts afresh.
RESOLVED_CACHE = 1024
_DAY = 86400
#: Inclusive bounds of each field: a typo must not issue a ten-year ticket or disable lockout.
BOUNDS: Mapping[str, tuple[int, int]] = {
    "tgt_lifetime_s": (60, 30 * _DAY),
    "renewable_lifetime_s": (0, MAX_TICKET_LIFE_S),
    "service_ticket_lifetime_s": (60, 30 * _DAY),
    "lockout_threshold": (1, 1000),
    "lockout_window_s": (1, 30 * _DAY),
    "lockout_duration_s": (1, 30 * _DAY),
}


@dataclass(frozen=True, slots=True)
class PolicyOverride:
    """Fields a realm default or a principal sets; ``None`` inherits from the next level."""

    tgt_lifetime_s: int | None = None
    renewable_lifetime_s: int | None = None
    service_ticket_lifetime_s: int | None = None
    lockout_threshold: int | None = None
    lockout_window_s: int | None = None
    lockout_duration_s: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            low, high = BOUNDS[f.name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidRequest(f"{f.name} must be a whole number between {low} and {high}")

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def over(self, base: PolicyOverride) -> PolicyOverride:
        """This override's fields where set, ``base``'s elsewhere."""
        return replace(base, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None})

    def to_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> PolicyOverride:
        """From a JSON object; unknown fields are refused so a misspelt one is not silently ignored."""
        if not isinstance(data, Mapping):
            raise InvalidRequest("a policy is a JSON object")
        unknown = sorted(set(data) - set(BOUNDS))
        if unknown:
            raise InvalidRequest(f"unknown policy field(s) {', '.join(map(str, unknown))}; known: "
                                 f"{', '.join(BOUNDS)}")
        return cls(**{str(k): v for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """What the KDC applies to one principal."""

    ticket: TicketPolicy
    lockout: LockoutPolicy

    def value(self, name: str) -> int:
        """A field by its ``PolicyOverride`` name."""
        t, lk = self.ticket, self.lockout
        return {"tgt_lifetime_s": t.tgt_lifetime_s, "renewable_lifetime_s": t.renewable_lifetime_s,
                "service_ticket_lifetime_s": t.service_ticket_lifetime_s, "lockout_threshold": lk.threshold,
                "lockout_window_s": lk.window_s, "lockout_duration_s": lk.duration_s}[name]

    def for_service(self, service: EffectivePolicy) -> TicketPolicy:
        """Lifetimes for a TGS exchange by this client for ``service`` (renewals follow the client's)."""
        return replace(self.ticket, service_ticket_lifetime_s=min(self.ticket.service_ticket_lifetime_s,
                                                                  service.ticket.service_ticket_lifetime_s))

    def to_dict(self) -> dict[str, int]:
        return {name: self.value(name) for name in BOUNDS}

    @classmethod
    def from_dict(cls, data: Any) -> EffectivePolicy:
        try:
            v = {name: int(data[name]) for name in BOUNDS}
            return cls(TicketPolicy(v["tgt_lifetime_s"], v["renewable_lifetime_s"], v["service_ticket_lifetime_s"]),
                       LockoutPolicy(v["lockout_threshold"], v["lockout_window_s"], v["lockout_duration_s"]))
        except (KeyError, TypeError, ValueError, ConfigurationError) as e:
            raise InvalidRequest("malformed effective policy") from e


def _decode(raw: Any, what: str) -> PolicyOverride:
    if raw is None:
        return PolicyOverride()
    try:
        return _parse(raw)
    except (ValueError, InvalidRequest) as e:
        raise ConfigurationError(f"the stored policy of {what} is corrupt") from e


@functools.lru_cache(maxsize=RESOLVED_CACHE)
def _parse(raw: bytes | str) -> PolicyOverride:
    """A stored override by its exact text (a frozen value: sharing it is safe; errors are not kept)."""
    return PolicyOverride.from_dict(json.loads(raw))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class PolicyStore:
    """Reads, resolves and writes one realm's policies; ``base`` is what the app's configuration says."""

    def __init__(self, redis_client: redis.Redis, realm: str, base: EffectivePolicy) -> None:
        self.realm = realm
        self.base = base
        self._redis = redis_client
        self.key = f"tally:{{{realm}:policy}}"  # read by every AS/TGS: a slot of its own
        self._merged: dict[tuple[PolicyOverride, PolicyOverride], EffectivePolicy] = {}
        self._lock = threading.Lock()

    def _field(self, principal: Principal) -> str:
        if principal.realm != self.realm:
            raise InvalidRequest(f"{principal} is not in realm {self.realm}")
        return principal.name

    def _resolve(self, default: PolicyOverride, own: PolicyOverride) -> EffectivePolicy:
        found = self._merged.get((default, own))
        if found is None:
            found = self._merge(default, own)
            with self._lock:
                if len(self._merged) >= RESOLVED_CACHE:
                    self._merged.clear()
                self._merged[(default, own)] = found
        return found

    def _merge(self, default: PolicyOverride, own: PolicyOverride) -> EffectivePolicy:
        merged = own.over(default)

        def pick(name: str) -> int:
            value = getattr(merged, name)
            return self.base.value(name) if value is None else int(value)

        return EffectivePolicy(
            TicketPolicy(pick("tgt_lifetime_s"), pick("renewable_lifetime_s"), pick("service_ticket_lifetime_s")),
            LockoutPolicy(pick("lockout_threshold"), pick("lockout_window_s"), pick("lockout_duration_s")),
        )

    # -- the KDC's hot path: one HMGET each ------------------------------------

    def queue_resolve(self, batch: Batch, *principals: Principal) -> Reply[tuple[EffectivePolicy, ...]]:
        """The effective policy of each of ``principals`` (of this realm), read in ``batch`` by one HMGET."""
        fields_ = [self._field(p) for p in principals]
        return batch.add(functools.partial(self._resolved, principals),
                         ("HMGET", self.key, DEFAULT_FIELD, *fields_))

    def _resolve_now(self, *principals: Principal) -> tuple[EffectivePolicy, ...]:
        fields_ = [self._field(p) for p in principals]
        with store_errors():
            raw = self._redis.hmget(self.key, [DEFAULT_FIELD, *fields_])
        return self._resolved(principals, [raw])

    def _resolved(self, principals: tuple[Principal, ...], replies: list[Any]) -> tuple[EffectivePolicy, ...]:
        default, *own = replies[0]
        realm = _decode(default, "the realm")
        return tuple(self._resolve(realm, _decode(raw, str(p))) for raw, p in zip(own, principals, strict=True))

    def resolve(self, principal: Principal) -> EffectivePolicy:
        return self._resolve_now(principal)[0]

    def resolve_default(self) -> EffectivePolicy:
        """What a principal without an override gets."""
        return self._resolve(self.realm_default(), PolicyOverride())

    def resolve_pair(self, client: Principal, service: Principal) -> tuple[EffectivePolicy, EffectivePolicy]:
        client_policy, service_policy = self._resolve_now(client, service)
        return client_policy, service_policy

    # -- administration --------------------------------------------------------

    def realm_default(self) -> PolicyOverride:
        with store_errors():
            return _decode(self._redis.hget(self.key, DEFAULT_FIELD), "the realm")

    def override(self, principal: Principal) -> PolicyOverride:
        with store_errors():
            return _decode(self._redis.hget(self.key, self._field(principal)), str(principal))

    def overrides(self) -> dict[str, PolicyOverride]:
        """Every principal override, by full principal name (HGETALL: overrides are few)."""
        with store_errors():
            stored = self._redis.hgetall(self.key)
        return {f"{_text(k)}@{self.realm}": _decode(v, _text(k)) for k, v in sorted(stored.items())
                if _text(k) != DEFAULT_FIELD}

    def _write(self, field_name: str, policy: PolicyOverride) -> None:
        with store_errors():
            if policy.is_empty:
                self._redis.hdel(self.key, field_name)
            else:
                doc = {k: v for k, v in policy.to_dict().items() if v is not None}
                self._redis.hset(self.key, field_name, json.dumps(doc, sort_keys=True))

    def set_default(self, policy: PolicyOverride) -> None:
        """Replace the realm default (an empty one falls back to the app's configuration)."""
        self._write(DEFAULT_FIELD, policy)

    def set_override(self, principal: Principal, policy: PolicyOverride) -> None:
        """Replace ``principal``'s override (an empty one removes it)."""
        self._write(self._field(principal), policy)

    def longest(self) -> TicketPolicy:
        """The longest lifetimes any principal may get: what key retention must outlast."""
        levels = [self.realm_default(), *self.overrides().values()]

        def most(name: str) -> int:
            return max([self.base.value(name), *(int(getattr(o, name)) for o in levels if getattr(o, name) is not None)])

        return TicketPolicy(most("tgt_lifetime_s"), most("renewable_lifetime_s"), most("service_ticket_lifetime_s"))


def key_policy_source(policies: PolicyStore, *, max_skew_s: int,
                      new_service_key_delay_s: int = 0) -> Callable[[], KeyPolicy]:
    """Key retention for ``PrincipalDB``, read when a purge runs.

    A superseded key must outlive every ticket sealed under it, and a
    per-principal policy may allow longer lifetimes than the realm's base
    configuration: retention follows the longest lifetime any principal may
    currently be given (``PolicyStore.longest``).
    """

    def current() -> KeyPolicy:
        return KeyPolicy.for_tickets(policies.longest(), max_skew_s=max_skew_s,
                                     new_service_key_delay_s=new_service_key_delay_s)

    return current
