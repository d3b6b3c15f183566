"""Where the Redis store is and how to reach it: topology, TLS, credentials, pool and timeouts.

Kept apart from ``Settings`` so the connection layer (``redis_store``) and the
configuration file share one description of every ``TALLY_REDIS_*`` setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tally_protocol.errors import ConfigurationError

#: URL schemes accepted in TALLY_REDIS_URL.
URL_SCHEMES = ("redis://", "rediss://", "unix://")

#: Every setting this module reads; the configuration file accepts these names and no others for [redis].
NAMES: tuple[str, ...] = ("TALLY_REDIS_URL",)


@dataclass(frozen=True)
class RedisSettings:
    #: None means the embedded in-process store (fakeredis).
    url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RedisSettings:
        url = env.get("TALLY_REDIS_URL") or None
        if url is not None and not url.startswith(URL_SCHEMES):
            raise ConfigurationError("TALLY_REDIS_URL must start with " + ", ".join(URL_SCHEMES[:-1])
                                     + f" or {URL_SCHEMES[-1]}")
        return cls(url=url)
