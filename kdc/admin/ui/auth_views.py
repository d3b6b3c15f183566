"""Logging in and out, the landing page, and the admin's own account (password change).

Login order: CSRF (the guard) -> throttle per account and per address ->
password (Argon2id; unknown names cost the same) -> disabled flag, all in
``AdminAccounts.authenticate``.  A success starts a fresh session (new id,
new CSRF seed); a failure says only "wrong account name or password".
Both, and logout, are audit events (``admin.login``, ``admin.logout``),
written by ``AdminOperations.login`` / ``logout``.
"""

from __future__ import annotations

from flask import Response, flash, g, redirect, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from tally_protocol.errors import LockedOut, PreauthFailed, PrincipalDisabled, TallyError

from ..acl import Permission
from . import forms, security
from .blueprint import VIA, actor, admin_ui, operations, page, permitted

#: Where the landing page sends an admin, by the first permission they hold.
_LANDING = ((Permission.LIST, "admin_ui.principals"), (Permission.VIEW_AUDIT, "admin_ui.audit"),
            (Permission.SHOW, "admin_ui.status"), (Permission.MANAGE_ADMINS, "admin_ui.admins"))


def _address() -> str:
    return request.remote_addr or "unknown"


@admin_ui.get("/")
def index() -> BaseResponse:
    allowed = permitted()
    for permission, endpoint in _LANDING:
        if permission in allowed:
            return redirect(url_for(endpoint))
    return redirect(url_for("admin_ui.account"))


def _login_form(*, error: str | None = None, account: str = "", status: int = 200) -> Response:
    return page("login.html", status=status, error=error, account=account, next=security.next_target(),
                ended=bool(g.get("session_ended")) or request.args.get("ended") == "1")


@admin_ui.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    if security.logged_in_account() is not None:
        return redirect(security.next_target() or url_for("admin_ui.index"))
    if request.method == "GET":
        return _login_form()
    username = request.form.get("account", "").strip()[:forms.MAX_TEXT]
    password = request.form.get("password", "")
    try:
        account = operations().login(username, password, address=_address(), via=VIA)
    except TallyError as err:
        if isinstance(err, LockedOut):
            minutes = max(1, (int(err.data.get("retry_after", 60)) + 59) // 60)
            return _login_form(error=f"Too many failed logins. Try again in {minutes} minute"
                               f"{'s' if minutes > 1 else ''}.", account=username, status=429)
        if isinstance(err, PrincipalDisabled):
            return _login_form(error="This admin account is disabled.", account=username, status=403)
        if isinstance(err, PreauthFailed):
            return _login_form(error="Wrong account name or password.", account=username, status=401)
        raise
    security.start_session(account.username)
    return redirect(security.next_target() or url_for("admin_ui.index"))


@admin_ui.post("/logout")
def logout() -> BaseResponse:
    operations().logout(actor())
    security.end_session()
    flash("You have logged out.", "info")
    return redirect(url_for("admin_ui.login"))


@admin_ui.route("/account", methods=["GET", "POST"])
def account() -> Response | BaseResponse:
    """The admin's own account: roles, permissions, and a password change."""
    me = actor()
    error: str | None = None
    if request.method == "POST":
        try:
            operations().set_account_password(me, me.name, forms.new_password())
        except TallyError as err:
            if not forms.is_input_error(err):
                raise
            error = err.message
        else:
            security.start_session(me.name)  # this session goes on under a fresh id; every other one of the account ends
            flash("Your password has been changed; your other sessions have ended.", "success")
            return redirect(url_for("admin_ui.account"))
    roles = operations().acl.roles.resolve(me.roles)
    return page("account.html", section="admin_ui.account", status=400 if error else 200, error=error, me=me,
                roles=roles, permissions=sorted(permitted()))
