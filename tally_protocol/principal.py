"""Principal names: ``name@REALM`` (RFC 4120 §6.2, simplified).

Names are restricted to a small ASCII alphabet so that a name has exactly one
spelling: no case folding, no Unicode look-alikes, nothing to canonicalise.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .errors import InvalidPrincipal

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
_REALM = re.compile(r"[A-Z0-9][A-Z0-9.-]{0,62}")

#: The ticket-granting service's name component, as in Kerberos.
TGS_NAME = "krbtgt"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    realm: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidPrincipal(f"invalid principal name {self.name!r}")
        if not _REALM.fullmatch(self.realm):
            raise InvalidPrincipal(f"invalid realm {self.realm!r} (upper-case letters, digits, '.', '-')")

    @classmethod
    def parse(cls, text: str, default_realm: str | None = None) -> Principal:
        """Parse ``name@REALM``; a bare ``name`` takes ``default_realm``."""
        if cls is Principal and "@" in text:
            return _parse_qualified(text)
        name, sep, realm = text.rpartition("@")
        if not sep:
            if default_realm is None:
                raise InvalidPrincipal(f"principal {text!r} has no realm")
            return cls(text, default_realm)
        return cls(name, realm)

    @classmethod
    def tgs(cls, realm: str) -> Principal:
        """The ticket-granting service principal ``krbtgt/REALM@REALM``."""
        return cls(f"{TGS_NAME}/{realm}", realm)

    @property
    def is_tgs(self) -> bool:
        return self.name == f"{TGS_NAME}/{self.realm}"

    def __str__(self) -> str:
        return f"{self.name}@{self.realm}"


@functools.lru_cache(maxsize=4096)
def _parse_qualified(text: str) -> Principal:
    """``name@REALM`` to its (immutable) Principal, validated once per distinct text.

    Every message names two or three principals, mostly the same few: the
    regular expressions then run once per name, not per request.  A refused
    name raises and is not cached; the bound keeps made-up names from growing it.
    """
    name, _, realm = text.rpartition("@")
    return Principal(name, realm)
