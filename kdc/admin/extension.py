"""The admin layer's state in a KDC app (``app.extensions["tally_admin"]``) and how it is built.

``build_operations`` wires ``AdminOperations`` for a store and realm; the
KDC app (``init_admin``) and the local CLI both use it, so they apply the
same permissions and write to the same audit stream.  ``init_admin`` also
persists the KDC's own audit events (issuance, refusals, onboarding) into
the realm's stream through an audit sink, and makes sure ``kadmin/admin``
exists in realms created before it did.  The sink finds the realm through
the Flask app serving the request, or, for the AS and TGS exchanges that
the exchange front answers without Flask, through ``auditing_for``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, current_app, has_app_context

from relying_service.request_binding import BindingConfig
from relying_service.verifier import Verifier
from tally_protocol import Random
from tally_runtime.logs import add_audit_sink
from tally_runtime.settings import Settings

from ..principal_db import PrincipalDB
from ..state import KdcState
from .accounts import AdminAccounts, PasswordParamsFactory
from .acl import AccessControl, RoleStore
from .admin_service import admin_verifier, ensure_admin_service_quietly
from .audit_log import DEFAULT_MAXLEN, AuditLog
from .operations import AdminOperations
from .policies import EffectivePolicy, PolicyStore

EXTENSION = "tally_admin"


@dataclass(frozen=True)
class AdminState:
    operations: AdminOperations
    policies: PolicyStore
    verifier: Verifier
    binding: BindingConfig


def build_operations(store: redis.Redis, db: PrincipalDB, base: EffectivePolicy, *,
                     clock: Callable[[], float] = time.time, rng: Random = os.urandom,
                     password_params: PasswordParamsFactory | None = None,
                     audit_maxlen: int = DEFAULT_MAXLEN) -> AdminOperations:
    realm = db.realm
    accounts = (AdminAccounts(store, realm, clock, rng) if password_params is None
                else AdminAccounts(store, realm, clock, rng, password_params=password_params))
    return AdminOperations(store, db, AccessControl(RoleStore(store, realm)), accounts,
                           PolicyStore(store, realm, base), AuditLog(store, realm, clock=clock, maxlen=audit_maxlen),
                           clock, rng)


#: The admin state of the request a WSGI layer serves without a Flask app context (``auditing_for``).
_SERVING: ContextVar[AdminState | None] = ContextVar("tally_admin_serving", default=None)


@contextlib.contextmanager
def auditing_for(state: AdminState) -> Iterator[None]:
    """While the block runs, audit events of this thread or task go to ``state``'s stream."""
    token = _SERVING.set(state)
    try:
        yield
    finally:
        _SERVING.reset(token)


def persist_audit_event(entry: dict[str, Any]) -> None:
    """Audit sink: inside a KDC app's request, store the event in that realm's stream."""
    state = _SERVING.get()
    if state is None and has_app_context():
        state = current_app.extensions.get(EXTENSION)
    if isinstance(state, AdminState):
        state.operations.audit_log.append(entry)


def init_admin(app: Flask, kdc: KdcState, settings: Settings) -> AdminState:
    """Build the admin layer for ``app`` (after ``kdc`` state exists); the caller registers ``admin_api``."""
    app.config.setdefault("TALLY_AUDIT_MAXLEN", DEFAULT_MAXLEN)
    operations = build_operations(
        kdc.redis, kdc.db, EffectivePolicy(kdc.ticket_policy, kdc.lockout.policy), clock=kdc.clock, rng=kdc.rng,
        password_params=app.config.get("TALLY_PASSWORD_PARAMS"), audit_maxlen=int(app.config["TALLY_AUDIT_MAXLEN"]),
    )
    state = AdminState(
        operations=operations,
        policies=operations.policies,
        verifier=admin_verifier(kdc.db, kdc.replay_cache, policy=kdc.verify_policy, clock=kdc.clock, rng=kdc.rng),
        binding=BindingConfig.create(settings.public_url, bool(app.config.get("TALLY_TRUST_FORWARDED"))),
    )
    app.extensions[EXTENSION] = state
    add_audit_sink(persist_audit_event)
    ensure_admin_service_quietly(kdc.db)
    return state


def admin_state(app: Flask | None = None) -> AdminState:
    state = (app or current_app).extensions[EXTENSION]
    assert isinstance(state, AdminState)
    return state
