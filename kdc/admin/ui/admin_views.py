"""Admin accounts and roles (``manage-admins``): accounts, role grants to accounts and principals,
and custom roles.

``AdminOperations`` refuses any grant, revocation or role definition that
would hand out a permission the acting admin does not hold; the page only
reports it.  An admin's own account has no disable or delete buttons here
(one click must not lock the last admin out); another admin can do it.
"""

from __future__ import annotations

from flask import Response, flash, redirect, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from tally_protocol.errors import TallyError

from ..acl import WILDCARD, Permission
from . import forms
from .blueprint import actor, admin_ui, operations, page

SECTION = "admin_ui.admins"


def _page(*, error: str | None = None, form: dict[str, object] | None = None, status: int = 200) -> Response:
    ops, me = operations(), actor()
    view = ops.admins(me)
    roles = ops.roles(me)
    return page("admins.html", section=SECTION, status=status if not error else 400, view=view, roles=roles,
                permissions=[str(p) for p in Permission], wildcard=WILDCARD, error=error, form=form or {},
                me=me.name)


def _done(message: str) -> BaseResponse:
    flash(message, "success")
    return redirect(url_for("admin_ui.admins"))


def _failed(err: TallyError, form: dict[str, object] | None = None) -> Response:
    if not forms.is_input_error(err):
        raise err
    return _page(error=err.message, form=form)


@admin_ui.get("/admins")
def admins() -> Response:
    return _page()


@admin_ui.post("/admins/accounts")
def create_account() -> Response | BaseResponse:
    roles = request.form.getlist("roles")
    form: dict[str, object] = {"username": request.form.get("username", "").strip(), "roles": roles}
    try:
        username = forms.text("username", label="Account name")
        account = operations().create_account(actor(), username, forms.new_password(), roles)
    except TallyError as err:
        return _failed(err, form)
    return _done(f"Created admin account {account.username}.")


@admin_ui.post("/admins/accounts/<username>/disable")
def disable_account(username: str) -> Response | BaseResponse:
    try:
        operations().set_account_disabled(actor(), username, True)
    except TallyError as err:
        return _failed(err)
    return _done(f"Disabled admin account {username}: its sessions end at their next request.")


@admin_ui.post("/admins/accounts/<username>/enable")
def enable_account(username: str) -> Response | BaseResponse:
    try:
        operations().set_account_disabled(actor(), username, False)
    except TallyError as err:
        return _failed(err)
    return _done(f"Enabled admin account {username}.")


@admin_ui.route("/admins/accounts/<username>/delete", methods=["GET", "POST"])
def delete_account(username: str) -> Response | BaseResponse:
    if request.method == "GET":
        return page("account_delete.html", section=SECTION, username=username)
    if request.form.get("confirm", "").strip() != username:
        flash(f"Type the account name ({username}) to confirm the deletion.", "error")
        return redirect(url_for("admin_ui.delete_account", username=username))
    try:
        operations().delete_account(actor(), username)
    except TallyError as err:
        return _failed(err)
    return _done(f"Deleted admin account {username}.")


@admin_ui.post("/admins/grant")
def grant_role() -> Response | BaseResponse:
    form: dict[str, object] = {"subject": request.form.get("subject", "").strip(), "role": request.form.get("role")}
    try:
        subject = forms.text("subject", label="Account or principal")
        role = forms.text("role", label="Role")
        operations().grant(actor(), subject, role)
    except TallyError as err:
        return _failed(err, form)
    return _done(f"Granted role {role} to {subject}.")


@admin_ui.post("/admins/revoke")
def revoke_role() -> Response | BaseResponse:
    try:
        subject = forms.text("subject", label="Account or principal")
        role = forms.text("role", label="Role")
        operations().revoke(actor(), subject, role)
    except TallyError as err:
        return _failed(err)
    return _done(f"Revoked role {role} from {subject}.")


@admin_ui.post("/admins/roles")
def define_role() -> Response | BaseResponse:
    permissions = request.form.getlist("permissions")
    form: dict[str, object] = {"role_name": request.form.get("role_name", "").strip(), "permissions": permissions}
    try:
        name = forms.text("role_name", label="Role name")
        role = operations().define_role(actor(), name, permissions)
    except TallyError as err:
        return _failed(err, form)
    return _done(f"Saved role {role.name}.")


@admin_ui.post("/admins/roles/<name>/delete")
def delete_role(name: str) -> Response | BaseResponse:
    try:
        operations().delete_role(actor(), name)
    except TallyError as err:
        return _failed(err)
    return _done(f"Deleted role {name}.")
