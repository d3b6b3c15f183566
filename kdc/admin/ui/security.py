"""The admin UI's request guard: session, CSRF and headers around every page.

Order of checks for each request to the UI blueprint (static files aside):

1. every session, logged in or not, carries a random CSRF seed (login forms
   are protected too: no login CSRF);
2. a state-changing method (anything but GET/HEAD) must carry this
   session's signed CSRF token, or gets 403 before any other work;
3. the session id in the cookie must name a live server-side session (idle
   timeout, absolute lifetime) of an account that still exists, is not
   disabled and has not changed its password since the session began (a
   password change ends every other session of the account; the one that
   made it continues under a fresh id); otherwise the admin is logged out;
4. pages other than login need a logged-in admin: GETs are redirected to
   the login page, other methods too (nothing is done on their behalf).

Every response gets the security headers below; pages are never stored by
a cache (``no-store``): they show principals, audit records and, once,
secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from ...state import kdc_state
from ..extension import admin_state
from .config import UiConfig
from .csrf import FIELD, CsrfTokens
from .one_time import OneTimeSecrets
from .sessions import UiSessions

EXTENSION = "tally_admin_ui"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Endpoints reachable without a logged-in admin.
PUBLIC_ENDPOINTS = frozenset({"admin_ui.login", "admin_ui.static"})
CSRF_SEED_BYTES = 16
HEADER = "X-CSRF-Token"

SECURITY_HEADERS = {
    # Everything from this origin only; no inline script or style, no plugins, no framing, forms post home.
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class UiState:
    """The admin UI's parts, kept in ``app.extensions["tally_admin_ui"]``."""

    config: UiConfig
    sessions: UiSessions
    csrf: CsrfTokens
    secrets: OneTimeSecrets


def ui_state() -> UiState:
    state = current_app.extensions[EXTENSION]
    assert isinstance(state, UiState)
    return state


def csrf_seed() -> str:
    seed = session.get("csrf")
    if not isinstance(seed, str):
        seed = session["csrf"] = kdc_state().rng(CSRF_SEED_BYTES).hex()
    return seed


def csrf_token() -> str:
    """This session's token, for the hidden field of every form (templates call it)."""
    return ui_state().csrf.issue(csrf_seed())


def logged_in_account() -> str | None:
    """The admin account of this request, once ``guard`` has run (None when not logged in)."""
    account = g.get("admin_account")
    return account if isinstance(account, str) else None


def start_session(account: str) -> None:
    """Log ``account`` in: a fresh session id and CSRF seed (nothing from before login survives)."""
    end_session()
    session.clear()
    session["sid"] = ui_state().sessions.open(account)
    csrf_seed()
    g.admin_account = account


def end_session() -> None:
    sid = session.get("sid")
    if isinstance(sid, str):
        ui_state().sessions.close(sid)
    session.pop("sid", None)
    g.admin_account = None


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site may follow login (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def next_target() -> str | None:
    return _safe_next(request.args.get("next"))


def guard() -> BaseResponse | None:
    if request.endpoint == "admin_ui.static":
        return None
    state = ui_state()
    seed = csrf_seed()
    if request.method not in SAFE_METHODS:
        state.csrf.check(request.form.get(FIELD) or request.headers.get(HEADER), seed)
    g.admin_account = None
    sid = session.get("sid")
    if isinstance(sid, str):
        live = state.sessions.resume(sid)
        account = None if live is None else admin_state().operations.accounts.find(live.account)
        if account is None or account.disabled or (
                account.password_changed is not None and live is not None and live.created < account.password_changed):
            end_session()
            g.session_ended = True
        else:
            g.admin_account = account.username
    if g.admin_account is None and request.endpoint not in PUBLIC_ENDPOINTS:
        target = request.full_path.rstrip("?") if request.method in SAFE_METHODS else None
        args: dict[str, Any] = {"next": target} if target and target != url_for("admin_ui.index") else {}
        if g.get("session_ended"):
            args["ended"] = "1"
        return redirect(url_for("admin_ui.login", **args))
    return None


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "admin_ui.static":
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def install(blueprint: Blueprint) -> None:
    """Put ``guard`` before and the headers after every request of ``blueprint``."""
    blueprint.before_request(guard)
    blueprint.after_request(add_security_headers)
    blueprint.context_processor(lambda: {"csrf_token": csrf_token, "csrf_field": FIELD,
                                             "admin_account": logged_in_account()})
