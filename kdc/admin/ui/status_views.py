"""Realm status: the store's health, the ticket-granting and master key versions, and when they rotated.

A store that cannot be reached is shown as such (503 page with the reason),
never as an error trace; the JSON readiness probe stays ``/readyz``.
"""

from __future__ import annotations

from flask import Response

from .blueprint import actor, admin_ui, operations, page


@admin_ui.get("/status")
def status() -> Response:
    return page("status.html", section="admin_ui.status", status_=operations().realm_status(actor()))
