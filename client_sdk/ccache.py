"""The credential cache: tickets and session keys a client holds between runs.

Rules this file keeps:

* it holds what ``tally login`` obtained (the TGT) and the service tickets
  fetched with it, never the long-term key or password: stealing the cache
  gives a thief hours, not the identity;
* it is written with mode 0600 from the first byte, via a temporary file in
  the same directory and ``os.replace``, so a reader never sees half a cache
  and a crash never leaves one;
* it is read only when no group or other access is granted
  (``tally_runtime.secret_files``), and any damage is one clear
  ``ConfigurationError`` telling the user what to do, never a traceback.

File format (JSON)::

    {"version": 1, "client": "alice@R", "kdc_url": "http://...",
     "credentials": {"krbtgt/R@R": Credential.to_dict(), "api@R": ...}}
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tally_protocol.errors import ConfigurationError, TallyError
from tally_protocol.principal import Principal
from tally_runtime.secret_files import SECRET_MODE, read_secret

from .flow import Credential

FORMAT_VERSION = 1


class CredentialCache:
    """A credential cache file, loaded on first use and written on every change."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._loaded = False
        self._client: Principal | None = None
        self._kdc_url: str | None = None
        self._creds: dict[str, Credential] = {}

    def __repr__(self) -> str:  # names only: entries hold session keys
        return f"CredentialCache({str(self.path)!r})"

    # -- reading -------------------------------------------------------------

    def load(self) -> CredentialCache:
        """(Re)read the file; a missing file is an empty cache."""
        self._client, self._kdc_url, self._creds = None, None, {}
        self._loaded = True
        if not self.path.exists():
            return self
        raw = read_secret(self.path, what="credential cache")
        try:
            doc = json.loads(raw.decode("utf-8"))
            self._client, self._kdc_url, self._creds = _parse(doc)
        except (ValueError, TypeError, KeyError, AttributeError, TallyError) as e:
            raise ConfigurationError(
                f"credential cache {self.path} is corrupt; run `tally logout` and `tally login` again"
            ) from e
        return self

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()

    @property
    def client(self) -> Principal | None:
        """The principal whose credentials these are (``None`` for an empty cache)."""
        self._ensure_loaded()
        return self._client

    @property
    def kdc_url(self) -> str | None:
        """The KDC the credentials came from."""
        self._ensure_loaded()
        return self._kdc_url

    def get(self, service: Principal | str) -> Credential | None:
        self._ensure_loaded()
        return self._creds.get(str(service))

    def entries(self) -> list[Credential]:
        """Every credential, the TGT first, then services by name."""
        self._ensure_loaded()
        return sorted(self._creds.values(), key=lambda c: (not c.service.is_tgs, str(c.service)))

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._creds)

    # -- writing -------------------------------------------------------------

    def clear(self) -> None:
        """Empty the cache in memory without reading or touching the file; the next write replaces it."""
        self._loaded = True
        self._client, self._kdc_url, self._creds = None, None, {}

    def initialize(self, client: Principal, kdc_url: str | None) -> None:
        """Start a fresh cache for ``client`` (as ``kinit`` does): old entries are dropped."""
        self._loaded = True
        self._client, self._kdc_url, self._creds = client, kdc_url, {}
        self.store()

    def put(self, cred: Credential) -> None:
        """Add or replace the credential for ``cred.service`` and write the file."""
        self._ensure_loaded()
        if self._client is None:
            self._client = cred.client
        elif cred.client != self._client:
            raise ConfigurationError(
                f"credential cache {self.path} belongs to {self._client}, not {cred.client}; run `tally login`"
            )
        self._creds[str(cred.service)] = cred
        self.store()

    def remove(self, service: Principal | str) -> bool:
        """Forget one credential; ``False`` when there was none."""
        self._ensure_loaded()
        if self._creds.pop(str(service), None) is None:
            return False
        self.store()
        return True

    def destroy(self) -> list[Credential]:
        """Delete the file; returns what it held (nothing when it was unreadable)."""
        try:
            removed = self.load().entries()
        except ConfigurationError:
            removed = []  # a corrupt cache must still be removable
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise ConfigurationError(f"cannot remove credential cache {self.path}: {e.strerror}") from None
        self._client, self._kdc_url, self._creds = None, None, {}
        return removed

    def store(self) -> None:
        """Write the cache atomically with mode 0600."""
        doc: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "client": str(self._client) if self._client else None,
            "kdc_url": self._kdc_url,
            "credentials": {name: cred.to_dict() for name, cred in sorted(self._creds.items())},
        }
        _write_atomically(self.path, json.dumps(doc, indent=1).encode("utf-8"))


def _parse(doc: Any) -> tuple[Principal | None, str | None, dict[str, Credential]]:
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
        raise ValueError("not a version 1 credential cache")
    client = Principal.parse(doc["client"]) if doc.get("client") is not None else None
    kdc_url = doc.get("kdc_url")
    if kdc_url is not None and not isinstance(kdc_url, str):
        raise ValueError("kdc_url must be a string")
    creds: dict[str, Credential] = {}
    for name, entry in dict(doc["credentials"]).items():
        if not isinstance(entry, dict):
            raise TypeError("credential entry must be an object")
        cred = Credential.from_dict(entry)
        if str(cred.service) != name or (client is not None and cred.client != client):
            raise ValueError("credential entry does not match its key or the cache's client")
        creds[name] = cred
    return client, kdc_url, creds


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600 in the target directory, so the rename is atomic.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise ConfigurationError(f"cannot write credential cache {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), SECRET_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConfigurationError(f"cannot write credential cache {path}: {e.strerror}") from None
