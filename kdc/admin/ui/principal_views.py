"""Principals: list (prefix search, kind and status filters, cursor paging), create, show, disable and
enable, rotate, delete (with a confirmation step), and service keytab download.

Paging never loads the realm: each page is one ``list_principals`` call
from a cursor (the last name of the previous page), so page 1 and page
2,000 of 100,000 principals cost the same.  Filtered pages may come back
short with a cursor ("keep searching"), as ``AdminOperations`` documents.

A principal is named by a query parameter (``?name=``) or a form field, never
a path segment: names may contain ``/`` and even ``.``/``..`` segments, which
browsers would fold into another principal's URL.

Fresh keys (a new random-key client or service, a rotation) are handed over
once through ``one_time``: the POST stores the keytab in a one-time slot and
redirects to ``/admin/once``, whose download takes it out of the store.
"""

from __future__ import annotations

from flask import Response, flash, redirect, request, session, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import TallyError
from tally_protocol.keytab import dump_keytab
from tally_protocol.principal import Principal

from ...state import kdc_state
from ..acl import unextractable
from ..operations import KINDS, STATUSES
from ..results import Issued
from . import forms
from .blueprint import actor, admin_ui, operations, page
from .one_time import SlotTicket
from .security import ui_state

ONCE = "once"
SECTION = "admin_ui.principals"


def _file_name(p: Principal, kind: str) -> str:
    return p.name.replace("/", "_") + (".key" if kind == "client" else ".keytab")


def _hand_over(issued: Issued, what: str) -> BaseResponse:
    """Keep the fresh keytab in a one-time slot and send the admin to the page that delivers it."""
    summary = issued.principal
    if issued.keyset is None:
        flash(f"{what} {summary.name}.", "success")
        return redirect(url_for("admin_ui.principal", name=summary.name))
    ticket = ui_state().secrets.stash({"keytab": b64encode(dump_keytab(summary.principal, issued.keyset))})
    session[ONCE] = {**ticket.to_dict(), "kind": "keytab", "principal": summary.name, "what": what,
                     "filename": _file_name(summary.principal, summary.kind), "kvno": summary.current_kvno,
                     "principal_kind": summary.kind}
    return redirect(url_for("admin_ui.once"))


@admin_ui.get("/principals")
def principals() -> Response:
    args = request.args
    prefix = args.get("q", "").strip()
    if "@" in prefix:  # "alice@REALM" searches for alice
        prefix = prefix.split("@", 1)[0]
    kind = args.get("kind") if args.get("kind") in KINDS else None
    status = args.get("status") if args.get("status") in STATUSES else None
    cursor = args.get("cursor") or None
    result = operations().list_principals(actor(), prefix=prefix, cursor=cursor, kind=kind, status=status,
                                          limit=ui_state().config.page_size)
    filters = {k: v for k, v in {"q": prefix, "kind": kind, "status": status}.items() if v}
    return page("principals.html", section=SECTION, principals=result.principals, next_cursor=result.next_cursor,
                cursor=cursor, filters=filters, kinds=sorted(KINDS), statuses=sorted(STATUSES))


@admin_ui.route("/principals/new", methods=["GET", "POST"])
def new_principal() -> Response | BaseResponse:
    form = {"name": "", "kind": request.args.get("kind", "client"), "source": "random"}
    error: str | None = None
    if request.method == "POST":
        form = {"name": request.form.get("name", "").strip(), "kind": request.form.get("kind", ""),
                "source": request.form.get("source", "random")}
        try:
            name = forms.text("name", label="Name")
            kind = forms.choice("kind", ("client", "service"), label="Kind")
            if kind == "service":
                issued = operations().add_service(actor(), name)
            elif forms.choice("source", ("random", "password"), label="Key") == "password":
                issued = operations().add_client(actor(), name, password=forms.new_password())
            else:
                issued = operations().add_client(actor(), name)
        except TallyError as err:
            if not forms.is_input_error(err):
                raise
            error = err.message
        else:
            return _hand_over(issued, f"Created {issued.principal.kind}")
    return page("principal_new.html", section=SECTION, status=400 if error else 200, form=form, error=error)


def _target() -> str:
    """The principal a request is about: ``?name=`` on GET, the form's ``name`` field on POST."""
    if request.method == "GET":
        name = request.args.get("name", "").strip()
        if not name:
            raise forms.FormInvalid("name", "which principal? (?name= is missing)")
        return name
    return forms.text("name", label="Principal")


@admin_ui.get("/principal")
def principal() -> Response:
    name = _target()
    ops, me = operations(), actor()
    summary = ops.show(me, name)
    template = "principal_delete.html" if request.args.get("confirm") == "delete" else "principal.html"
    return page(template, section=SECTION, p=summary, now=int(kdc_state().clock()),
                extractable=summary.kind == "service" and not unextractable(summary.principal))


def _action_error(name: str, err: TallyError) -> BaseResponse:
    """An operation refused for a reason the admin can act on: say so on the principal's page."""
    if not forms.is_input_error(err):
        raise err
    flash(err.message, "error")
    return redirect(url_for("admin_ui.principal", name=name))


@admin_ui.post("/principal/disable")
def disable() -> BaseResponse:
    name = _target()
    try:
        summary = operations().disable(actor(), name)
    except TallyError as err:
        return _action_error(name, err)
    flash(f"Disabled {summary.name}: it gets no new tickets.", "success")
    return redirect(url_for("admin_ui.principal", name=summary.name))


@admin_ui.post("/principal/enable")
def enable() -> BaseResponse:
    name = _target()
    try:
        summary = operations().enable(actor(), name)
    except TallyError as err:
        return _action_error(name, err)
    flash(f"Enabled {summary.name}.", "success")
    return redirect(url_for("admin_ui.principal", name=summary.name))


@admin_ui.post("/principal/rotate")
def rotate() -> BaseResponse:
    name = _target()
    try:
        delay = forms.optional_int("delay_s", label="Delay")
        password = request.form.get("password") or None
        if password is not None:
            password = forms.new_password()
        issued = operations().rotate(actor(), name, password=password, delay_s=delay)
    except TallyError as err:
        return _action_error(name, err)
    return _hand_over(issued, f"Rotated the key of {issued.principal.kind}")


@admin_ui.post("/principal/delete")
def delete() -> BaseResponse:
    name = _target()
    ops = operations()
    target = str(ops.principal(name))
    if request.form.get("confirm", "").strip() not in (target, ops.principal(name).name):
        flash(f"Type the principal's name ({target}) to confirm the deletion.", "error")
        return redirect(url_for("admin_ui.principal", name=name, confirm="delete"))
    try:
        ops.delete(actor(), name)
    except TallyError as err:
        return _action_error(name, err)
    flash(f"Deleted {target}.", "success")
    return redirect(url_for("admin_ui.principals"))


@admin_ui.post("/principal/keytab")
def keytab() -> Response:
    name = _target()
    """A service's keytab (every kept version), for ``extract-keys`` holders only; never cached."""
    principal_, keyset = operations().export_keytab(actor(), name)
    response = Response(dump_keytab(principal_, keyset), mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="{_file_name(principal_, "service")}"'
    return response


# -- the one-time hand-over ---------------------------------------------------------------


def _pending() -> tuple[SlotTicket | None, dict[str, object]]:
    meta = session.get(ONCE)
    if not isinstance(meta, dict):
        return None, {}
    return SlotTicket.from_dict(meta), meta


@admin_ui.get("/once")
def once() -> Response:
    """The page announcing a fresh secret: a keytab to download now, or (onboarding) a token shown here."""
    ticket, meta = _pending()
    secrets = ui_state().secrets
    if ticket is None or not secrets.exists(ticket):
        session.pop(ONCE, None)
        return page("once_gone.html", section=SECTION, status=410)
    if meta.get("kind") != "keytab":
        document = secrets.take(ticket)
        session.pop(ONCE, None)
        if document is None:
            return page("once_gone.html", section=SECTION, status=410)
        return page("once_onboarding.html", section="admin_ui.onboarding", meta=meta, secret=document)
    return page("once_keytab.html", section=SECTION, meta=meta)


@admin_ui.post("/once/download")
def once_download() -> Response:
    ticket, meta = _pending()
    session.pop(ONCE, None)
    document = ui_state().secrets.take(ticket) if ticket is not None else None
    if document is None or not isinstance(document.get("keytab"), str):
        return page("once_gone.html", section=SECTION, status=410)
    response = Response(b64decode(str(document["keytab"])), mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="{meta.get("filename", "key.keytab")}"'
    return response
