"""CSRF tokens for every state-changing admin form (the synchronizer-token pattern, as Flask-WTF).

Rules this module keeps:

* Each session (anonymous before login, too: login CSRF) holds a random
  seed; the token is the seed signed with itsdangerous under the UI's
  secret key and a purpose salt, with a timestamp from the injected clock.
* A token is accepted only when its signature holds, it is younger than
  ``max_age_s``, and its seed equals this session's seed (constant-time):
  a token from another session, a forged one or an expired one is refused
  with one ``CsrfRefused`` (403) that says nothing about which check failed.
* SameSite=Strict alone is not enough: another port on the same host is the
  same site, so its pages send the cookie.  The token is what they lack.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from tally_protocol.errors import TallyError

SALT = "tally-admin-ui-csrf"
#: The form field (and header, for a future script) carrying the token.
FIELD = "csrf_token"


class CsrfRefused(TallyError):
    """A state-changing request without this session's valid CSRF token."""

    status_hint = 403
    default_message = ("this form has expired or did not come from this admin site; "
                       "go back, reload the page and try again")


class ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer reading the injected clock, so expiry is testable without sleeping."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class CsrfTokens:
    """Issues and checks the signed, session-bound CSRF tokens."""

    def __init__(self, secret_keys: Sequence[bytes], *, max_age_s: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._serializer = URLSafeTimedSerializer(list(secret_keys), salt=SALT, signer=ClockedSigner,
                                                  signer_kwargs={"clock": clock})
        self._max_age_s = max_age_s

    def issue(self, seed: str) -> str:
        token = self._serializer.dumps(seed)
        assert isinstance(token, str)
        return token

    def check(self, token: str | None, seed: str | None) -> None:
        """Raise ``CsrfRefused`` unless ``token`` is a live signature of ``seed``."""
        if not token or not seed:
            raise CsrfRefused()
        try:
            signed_seed = self._serializer.loads(token, max_age=self._max_age_s)
        except BadData:
            raise CsrfRefused() from None
        if not isinstance(signed_seed, str) or not hmac.compare_digest(signed_seed.encode(), seed.encode()):
            raise CsrfRefused()
