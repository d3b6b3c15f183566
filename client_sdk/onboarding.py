"""Onboarding a device: redeem an enrollment token, or pair with a PIN code.

The protocol steps are the pure functions of ``tally_protocol.enrollment``
and ``tally_protocol.pairing``; this module only moves their bytes to the
KDC and back (``OnboardingClient``) and writes the delivered key file.

Rules this file keeps:

* randomness (the X25519 and SPAKE2 secrets) comes from the ``rng`` passed
  in, ``os.urandom`` by default;
* a KDC refusal arrives as its typed error (``EnrollmentInvalid``,
  ``PairingFailed``...); a KDC that cannot prove it knows the code is
  ``MutualAuthFailed`` and nothing is written;
* the key file is a keytab written 0600 and never over an existing file
  unless asked to (``replace=True``), and then by an atomic rename.
"""

from __future__ import annotations

import os
from pathlib import Path

import requests

from tally_protocol import Random
from tally_protocol.enrollment import finish_enrollment, parse_token, start_enrollment
from tally_protocol.errors import ConfigurationError
from tally_protocol.keys import KEY_SIZE, Keyset
from tally_protocol.pairing import confirm_pairing, finish_pairing, start_pairing
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import write_keytab

from .kdc_client import TIMEOUT, KdcClient


class OnboardingClient(KdcClient):
    """The KDC's onboarding endpoints: ``/v1/enroll``, ``/v1/pair/start``, ``/v1/pair/finish``."""

    def enroll_exchange(self, enroll_req: bytes) -> bytes:
        return self._exchange("/v1/enroll", "enroll_req", "enroll_rep", enroll_req)

    def pair_start(self, pair_start: bytes) -> bytes:
        return self._exchange("/v1/pair/start", "pair_start", "pair_challenge", pair_start)

    def pair_finish(self, pair_finish: bytes) -> bytes:
        return self._exchange("/v1/pair/finish", "pair_finish", "pair_rep", pair_finish)


def enroll(kdc_url: str, token: str, *, rng: Random = os.urandom, session: requests.Session | None = None,
           timeout: tuple[float, float] = TIMEOUT) -> tuple[Principal, Keyset]:
    """Redeem ``token`` at the KDC; the principal it was made for and its new key."""
    raw = parse_token(token)  # a typo fails here, before the KDC sees (and could burn) anything
    kdc = OnboardingClient(kdc_url, session=session, timeout=timeout)
    pending = start_enrollment(raw, rng(KEY_SIZE))
    return finish_enrollment(pending, kdc.enroll_exchange(pending.request_bytes))


def pair(kdc_url: str, principal: Principal, code: str, *, rng: Random = os.urandom,
         session: requests.Session | None = None, timeout: tuple[float, float] = TIMEOUT) -> tuple[Principal, Keyset]:
    """Pair ``principal`` with the KDC using ``code``; its new key once both sides proved the code."""
    pending = start_pairing(principal, code, rng)
    kdc = OnboardingClient(kdc_url, session=session, timeout=timeout)
    confirmed = confirm_pairing(pending, kdc.pair_start(pending.start_bytes))
    return finish_pairing(confirmed, kdc.pair_finish(confirmed.finish_bytes))


def default_key_file(principal: Principal, directory: Path | str = ".") -> Path:
    """``alice.key`` for ``alice@REALM`` (a ``/`` in the name becomes ``_``)."""
    return Path(directory) / f"{principal.name.replace('/', '_')}.key"


def check_key_file_target(path: Path, *, replace: bool = False) -> Path:
    """Refuse a target that exists (unless ``replace``) or cannot be written, before any key is rotated."""
    path = path.expanduser()
    if path.is_dir():
        raise ConfigurationError(f"{path} is a directory")
    if path.exists() and not replace:
        raise ConfigurationError(f"{path} already exists; choose another --key-out or pass --force")
    parent = next((d for d in (path.parent, *path.parent.parents) if d.exists()), Path("/"))
    if not os.access(parent, os.W_OK):
        raise ConfigurationError(f"cannot write {path}: {parent} is not writable")
    return path


def write_key_file(path: Path, principal: Principal, keyset: Keyset, *, replace: bool = False) -> Path:
    """Write the delivered key as a keytab (0600); with ``replace`` through a rename, so readers never see half."""
    path = path.expanduser()
    if not replace:
        return write_keytab(path, principal, keyset)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_keytab(tmp, principal, keyset, overwrite=True)
    try:
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot replace {path}: {e.strerror}") from None
    return path
