"""The admin UI blueprint (``/admin``): page rendering, the acting admin, and HTML error pages.

Every page acts through ``AdminOperations`` with an ``Actor`` built here
from the logged-in account (its roles read afresh on every request, so a
revoked role or a disabled account takes effect at once); no view checks a
permission or writes an audit record itself.  Permissions are only read
here to hide navigation the admin could not use anyway.

Errors become pages, never a traceback or a 500 for bad input: a denied
action is a 403 page, an unknown principal a 404 page, an unreachable
store a 503 page (with ``Retry-After``).  Forms catch their own input
errors and show the form again (``forms.py``).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, g, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from tally_protocol.errors import PermissionDenied, StoreUnavailable, TallyError

from ..acl import Actor, Permission
from ..extension import admin_state
from ..operations import AdminOperations
from . import security
from .csrf import CsrfRefused

admin_ui = Blueprint("admin_ui", __name__, url_prefix="/admin", template_folder="templates",
                     static_folder="static")
security.install(admin_ui)

#: Navigation: endpoint, label, and the permission without which the tab is hidden.
NAV: tuple[tuple[str, str, Permission | None], ...] = (
    ("admin_ui.principals", "Principals", Permission.LIST),
    ("admin_ui.policies", "Policies", Permission.SHOW),
    ("admin_ui.audit", "Audit log", Permission.VIEW_AUDIT),
    ("admin_ui.onboarding", "Enrollment & pairing", Permission.ROTATE),
    ("admin_ui.admins", "Admins & roles", Permission.MANAGE_ADMINS),
    ("admin_ui.status", "Realm status", Permission.SHOW),
    ("admin_ui.account", "My account", None),
)
VIA = "web"


def operations() -> AdminOperations:
    return admin_state().operations


def actor() -> Actor:
    """The logged-in admin as an ``Actor`` (the guard has already refused anonymous requests)."""
    current = g.get("admin_actor")
    if isinstance(current, Actor):
        return current
    account = security.logged_in_account()
    if account is None:
        raise PermissionDenied("not logged in")
    current = Actor(account, operations().accounts.roles_of(account), request.remote_addr or "unknown", VIA)
    g.admin_actor = current
    return current


def permitted() -> frozenset[Permission]:
    """What the admin may do: for showing links and buttons only; operations decide for themselves."""
    if security.logged_in_account() is None:
        return frozenset()
    return operations().acl.permissions(actor())


def when(epoch: Any) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS UTC`` (the audit log's and the KDC's time zone)."""
    if epoch is None or epoch == "":
        return "—"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(epoch)))
    except (TypeError, ValueError, OverflowError):
        return str(epoch)


def duration(seconds: Any) -> str:
    """``36000`` -> ``10 h``: lifetimes read at a glance (the exact seconds stay in the form)."""
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


admin_ui.add_app_template_filter(when, "when")
admin_ui.add_app_template_filter(duration, "duration")


def page(template: str, *, section: str | None = None, status: int = 200, **context: Any) -> Response:
    """Render ``admin_ui/<template>`` with the layout's context (realm, navigation, permissions)."""
    allowed = permitted()
    nav = [(endpoint, label) for endpoint, label, need in NAV if need is None or need in allowed]
    html = render_template(f"admin_ui/{template}", realm=operations().realm, nav_items=nav, section=section,
                           can=allowed, **context)
    return make_response(html, status)


_HEADINGS = {400: "Bad request", 401: "Not authenticated", 403: "Permission denied", 404: "Not found",
             405: "Method not allowed", 409: "Conflict", 413: "Request too large", 429: "Too many attempts",
             503: "Service unavailable"}


def error_page(status: int, message: str, code: str | None = None) -> Response:
    heading = _HEADINGS.get(status, "Something went wrong")
    try:
        response = page("error.html", status=status, heading=heading, message=message, code=code, http_status=status)
    except TallyError:  # the store is down: still answer, without the layout's permission lookup
        response = make_response(render_template("admin_ui/error.html", realm="", nav_items=[], section=None,
                                                 can=frozenset(), heading=heading, message=message, code=code,
                                                 http_status=status),
                                 status)
    if status in (429, 503):
        response.headers["Retry-After"] = "1"
    return response


@admin_ui.errorhandler(TallyError)
def _tally_error(err: TallyError) -> Response:
    status = err.status_hint if 400 <= err.status_hint < 600 else 500
    message = err.message
    if isinstance(err, StoreUnavailable):
        message = "The realm's store (Redis) cannot be reached right now. Nothing was changed; try again shortly."
    if isinstance(err, CsrfRefused):
        return error_page(403, err.message, None)
    return error_page(status, message, str(err.code))


@admin_ui.errorhandler(HTTPException)
def _http_error(err: HTTPException) -> Response:
    status = err.code or 500
    return error_page(status, err.description or err.name)
