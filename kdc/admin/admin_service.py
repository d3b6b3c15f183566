"""The realm's admin service principal, ``kadmin/admin@REALM``, and the verifier of admin API requests.

As kadmin talks to kadmin/admin, admin API callers present a ticket for it:
the API is one more relying service, so requests get the protocol's replay
protection, request binding and mutual authentication.  The KDC holds the
key itself (no keytab file): the verifier reads the keyset from the principal
database on every request, so a rotation takes effect at once.  The key can
never be extracted (``acl.unextractable``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from relying_service.verifier import Verifier
from tally_protocol import Random
from tally_protocol.errors import AlreadyExists, ConfigurationError, NotFound, StoreUnavailable
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal
from tally_protocol.replay import ReplayCache
from tally_protocol.verify import VerifyPolicy

from ..principal_db import PrincipalDB
from .acl import ADMIN_SERVICE_NAME

_log = logging.getLogger("tally.admin")


def admin_service(realm: str) -> Principal:
    return Principal(ADMIN_SERVICE_NAME, realm)


def ensure_admin_service(db: PrincipalDB) -> bool:
    """Create ``kadmin/admin`` if the realm lacks it (idempotent); True when created.

    Its key is random and never returned: only the KDC ever holds it.
    """
    principal = admin_service(db.realm)
    if db.find(principal) is not None:
        return False
    db.check_master_key()  # never wrap a new key under a master key file that is not this realm's
    try:
        db.add_service(principal)
    except AlreadyExists:  # another worker created it first
        return False
    return True


def ensure_admin_service_quietly(db: PrincipalDB) -> None:
    """At app start: create ``kadmin/admin`` when possible.

    An uninitialised realm, a down store or a master key file of another
    realm only log: requests will report them, as before this check existed.
    """
    try:
        if ensure_admin_service(db):
            _log.info("admin service principal created", extra={"fields": {"principal": ADMIN_SERVICE_NAME}})
    except (NotFound, StoreUnavailable, ConfigurationError) as err:
        _log.warning("admin service principal not checked", extra={"fields": {"error": str(err.code)}})


def admin_verifier(db: PrincipalDB, replay_cache: ReplayCache, *, policy: VerifyPolicy,
                   clock: Callable[[], float] = time.time, rng: Random = os.urandom) -> Verifier:
    principal = admin_service(db.realm)

    def keyset() -> Keyset:
        return db.keyset(principal)

    return Verifier(principal, keyset, replay_cache, policy=policy, clock=clock, rng=rng)
