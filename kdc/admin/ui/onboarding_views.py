"""Enrollment tokens and pairing codes: create one (shown once), list what is outstanding, void it.

Creating a token or opening a pairing lets a device obtain a new key for
the client (redeeming rotates it), so it takes the ``rotate`` permission,
decided by ``AdminOperations``.  The token or code goes through the same
one-time slot as fresh key files: shown by one GET of ``/admin/once``,
gone on reload.  Listings never hold a token or a code, only their public
ids, principals and expiry times.
"""

from __future__ import annotations

from flask import Response, flash, redirect, request, session, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from tally_protocol.errors import TallyError

from ...enrollment import DEFAULT_TTL_S as ENROLL_TTL_S
from ...enrollment import MAX_TTL_S as ENROLL_MAX_TTL_S
from ...pairing import DEFAULT_ATTEMPTS, MAX_ATTEMPTS
from ...pairing import DEFAULT_TTL_S as PAIR_TTL_S
from ...pairing import MAX_TTL_S as PAIR_MAX_TTL_S
from ...state import kdc_state
from . import forms
from .blueprint import actor, admin_ui, operations, page
from .principal_views import ONCE
from .security import ui_state

SECTION = "admin_ui.onboarding"


def _kdc_url() -> str:
    return request.host_url.rstrip("/")


def _key_file(name: str) -> str:
    return name.split("@", 1)[0].replace("/", "_") + ".key"


def _hand_over(kind: str, principal: str, document: dict[str, object]) -> BaseResponse:
    ticket = ui_state().secrets.stash(document)
    session[ONCE] = {**ticket.to_dict(), "kind": kind, "principal": principal}
    return redirect(url_for("admin_ui.once"))


def _page(*, error: str | None = None, form: dict[str, str] | None = None) -> Response:
    ops, me = operations(), actor()
    tokens, pairings = ops.onboarding(me)
    defaults = {"principal": request.args.get("principal", ""), "enroll_ttl": str(ENROLL_TTL_S // 60),
                "pair_ttl": str(PAIR_TTL_S // 60), "attempts": str(DEFAULT_ATTEMPTS)}
    return page("onboarding.html", section=SECTION, status=400 if error else 200, tokens=tokens,
                pairings=pairings, error=error, form={**defaults, **(form or {})}, max_attempts=MAX_ATTEMPTS,
                enroll_max_min=ENROLL_MAX_TTL_S // 60, pair_max_min=PAIR_MAX_TTL_S // 60)


@admin_ui.get("/onboarding")
def onboarding() -> Response:
    return _page()


@admin_ui.post("/onboarding/enroll")
def create_enrollment() -> Response | BaseResponse:
    form = {"principal": request.form.get("principal", "").strip(), "enroll_ttl": request.form.get("enroll_ttl", "")}
    try:
        name = forms.text("principal", label="Client")
        minutes = forms.optional_int("enroll_ttl", label="Valid for (minutes)", low=1, high=ENROLL_MAX_TTL_S // 60)
        ttl_s = (minutes or ENROLL_TTL_S // 60) * 60
        ops = operations()
        token = ops.create_enrollment(actor(), name, ttl_s=ttl_s)
    except TallyError as err:
        if not forms.is_input_error(err):
            raise
        return _page(error=err.message, form=form)
    principal = str(ops.principal(name))
    return _hand_over("enrollment", principal, {
        "token": token, "expires_at": int(kdc_state().clock()) + ttl_s,
        "command": f"tally enroll {token} --kdc {_kdc_url()} --key-out {_key_file(principal)}"})


@admin_ui.post("/onboarding/pair")
def open_pairing() -> Response | BaseResponse:
    form = {"principal": request.form.get("principal", "").strip(), "pair_ttl": request.form.get("pair_ttl", ""),
            "attempts": request.form.get("attempts", "")}
    try:
        name = forms.text("principal", label="Client")
        minutes = forms.optional_int("pair_ttl", label="Open for (minutes)", low=1, high=PAIR_MAX_TTL_S // 60)
        attempts = forms.optional_int("attempts", label="Attempts", low=1, high=MAX_ATTEMPTS) or DEFAULT_ATTEMPTS
        ops = operations()
        code = ops.open_pairing(actor(), name, ttl_s=(minutes or PAIR_TTL_S // 60) * 60, attempts=attempts)
    except TallyError as err:
        if not forms.is_input_error(err):
            raise
        return _page(error=err.message, form=form)
    principal = str(ops.principal(name))
    return _hand_over("pairing", principal, {
        "code": code.display, "expires_at": code.expires_at, "attempts": code.attempts,
        "command": f"tally pair {principal} --code '{code.display}' --kdc {_kdc_url()} "
                   f"--key-out {_key_file(principal)}"})


@admin_ui.post("/onboarding/revoke")
def revoke_enrollment() -> BaseResponse:
    enrollment = forms.text("enrollment_id", label="Enrollment id")
    if operations().revoke_enrollment(actor(), enrollment):
        flash("The enrollment token was revoked: it can no longer be used.", "success")
    else:
        flash("That token was already used, revoked or expired.", "error")
    return redirect(url_for("admin_ui.onboarding"))


@admin_ui.post("/onboarding/close")
def close_pairing() -> BaseResponse:
    name = forms.text("principal", label="Client")
    if operations().close_pairing(actor(), name):
        flash(f"Closed the pairing of {name}.", "success")
    else:
        flash(f"{name} had no open pairing.", "error")
    return redirect(url_for("admin_ui.onboarding"))
