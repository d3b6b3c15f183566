"""Policies: ticket lifetimes and lockout, as the realm default and per principal.

An empty field inherits (principal -> realm default -> the KDC's
configuration); the page shows what applies next to each field.  Changing
the realm default needs ``manage-policies``, a principal's override
``modify`` (``AdminOperations.set_policy`` decides).  Values outside the
bounds of ``policies.BOUNDS`` come back as a form error, never a 500.
"""

from __future__ import annotations

from flask import Response, flash, redirect, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from tally_protocol.errors import TallyError

from ..policies import BOUNDS, PolicyOverride
from . import forms
from .blueprint import actor, admin_ui, operations, page

SECTION = "admin_ui.policies"
#: Field -> (label, unit shown beside the box).
FIELDS: dict[str, tuple[str, str]] = {
    "tgt_lifetime_s": ("Ticket-granting ticket lifetime", "seconds"),
    "renewable_lifetime_s": ("Renewable lifetime", "seconds"),
    "service_ticket_lifetime_s": ("Service ticket lifetime", "seconds"),
    "lockout_threshold": ("Lockout threshold", "failed logins"),
    "lockout_window_s": ("Lockout window", "seconds"),
    "lockout_duration_s": ("Lockout duration", "seconds"),
}


def _override_from_form() -> PolicyOverride:
    values = {name: forms.optional_int(name, label=label, low=BOUNDS[name][0], high=BOUNDS[name][1])
              for name, (label, _unit) in FIELDS.items()}
    return PolicyOverride(**values)


def _submitted() -> dict[str, str]:
    return {name: request.form.get(name, "").strip() for name in FIELDS}


@admin_ui.route("/policies", methods=["GET", "POST"])
def policies() -> Response | BaseResponse:
    ops, me = operations(), actor()
    error, submitted = None, None
    if request.method == "POST":
        submitted = _submitted()
        try:
            ops.set_policy(me, None, _override_from_form())
        except TallyError as err:
            if not forms.is_input_error(err):
                raise
            error = err.message
        else:
            flash("Saved the realm default policy.", "success")
            return redirect(url_for("admin_ui.policies"))
    overview = ops.policies_overview(me)
    return page("policies.html", section=SECTION, status=400 if error else 200, overview=overview, fields=FIELDS,
                bounds=BOUNDS, error=error, submitted=submitted)


@admin_ui.get("/policies/lookup")
def policy_lookup() -> BaseResponse:
    """The "override for a principal" box: go to that principal's policy page."""
    name = request.args.get("name", "").strip()
    if not name:
        return redirect(url_for("admin_ui.policies"))
    return redirect(url_for("admin_ui.principal_policy", name=name))


@admin_ui.route("/policies/principal", methods=["GET", "POST"])
def principal_policy() -> Response | BaseResponse:
    """``?name=`` names the principal (never a path segment: see ``principal_views``)."""
    name = request.args.get("name", "").strip()
    if not name:
        return redirect(url_for("admin_ui.policies"))
    ops, me = operations(), actor()
    error, submitted = None, None
    if request.method == "POST":
        submitted = _submitted()
        try:
            ops.set_policy(me, name, _override_from_form())
        except TallyError as err:
            if not forms.is_input_error(err) or err.status_hint == 404:
                raise
            error = err.message
        else:
            flash(f"Saved the policy of {ops.principal(name)}.", "success")
            return redirect(url_for("admin_ui.principal_policy", name=name))
    view = ops.policy(me, name)
    default = ops.policy(me, None)
    return page("policy_principal.html", section=SECTION, status=400 if error else 200, view=view,
                default=default, fields=FIELDS, bounds=BOUNDS, error=error, submitted=submitted)
