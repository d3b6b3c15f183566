"""The audit log: newest first, filtered by principal (actor or target), event, outcome and time.

Filters are query parameters, so a filtered view can be bookmarked or
shared; paging follows ``AuditPage.next_cursor`` (a stream id).  Times are
UTC, as the log stores them.  Reading the log is itself audited
(``admin.audit.query``), by ``AdminOperations``.
"""

from __future__ import annotations

from flask import Response, request

from tally_protocol.errors import TallyError

from ..audit_log import AuditQuery
from . import forms
from .blueprint import actor, admin_ui, operations, page
from .security import ui_state

OUTCOMES = ("success", "refused", "denied", "failure")
#: Event prefixes offered in the filter (free text is accepted too).
EVENT_GROUPS = (("admin.", "admin actions"), ("admin.principal.", "principal changes"), ("admin.login", "admin logins"),
                ("as.", "logins (AS)"), ("tgs.", "service tickets (TGS)"), ("enroll", "enrollment"),
                ("pair", "pairing"))
#: Fields shown in their own columns; the rest go to "details".
_COLUMNS = frozenset({"id", "time", "event", "outcome", "actor", "target", "principal", "address", "via", "audit"})


def details(entry: dict[str, object]) -> list[tuple[str, str]]:
    """The event's other fields; the permission only where it was the reason for a refusal."""
    hidden = _COLUMNS if entry.get("outcome") == "denied" else _COLUMNS | {"permission"}
    return [(k, str(v)) for k, v in sorted(entry.items()) if k not in hidden and v not in (None, "")]


@admin_ui.get("/audit")
def audit() -> Response:
    args = request.args
    filters = {name: args.get(name, "").strip()[:forms.MAX_TEXT]
               for name in ("principal", "event", "outcome", "since", "until")}
    cursor = args.get("cursor") or None
    error = None
    records, next_cursor = [], None
    try:
        query = AuditQuery(principal=filters["principal"] or None, event=filters["event"] or None,
                           outcome=filters["outcome"] or None,
                           since=forms.utc_time(filters["since"], field="since", label="From"),
                           until=forms.utc_time(filters["until"], field="until", label="Until"),
                           cursor=cursor, limit=ui_state().config.page_size)
        result = operations().audit_events(actor(), query)
        records, next_cursor = result.records, result.next_cursor
    except TallyError as err:
        if not forms.is_input_error(err):
            raise
        error = err.message
    active = {k: v for k, v in filters.items() if v}
    return page("audit.html", section="admin_ui.audit", status=400 if error else 200, records=records,
                next_cursor=next_cursor, cursor=cursor, filters=filters, active=active, error=error,
                outcomes=OUTCOMES, event_groups=EVENT_GROUPS, details=details)
