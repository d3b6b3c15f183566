"""Reading form fields into typed values, and telling input errors from refusals.

Browsers send strings; operations want names, whole numbers and choices.
Each reader raises ``FormInvalid`` (400, naming the field) for input it
cannot use, so a view shows the form again with a clear message rather
than an error page.  ``is_input_error`` says which errors from an operation
are the admin's input (show the form again) and which are refusals that
get their own page (permission denied, store unavailable).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable

from flask import request

from tally_protocol.errors import InvalidRequest, PermissionDenied, TallyError

MAX_TEXT = 256


class FormInvalid(InvalidRequest):
    """A form field the UI cannot use; ``data["field"]`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


def is_input_error(err: TallyError) -> bool:
    """Errors to show beside the form: any 4xx except a denied permission (a 403 page) or a lockout."""
    return 400 <= err.status_hint < 500 and err.status_hint != 429 and not isinstance(err, PermissionDenied)


def text(name: str, *, label: str | None = None, required: bool = True, strip: bool = True) -> str:
    value = request.form.get(name, "")
    if strip:
        value = value.strip()
    if len(value) > MAX_TEXT:
        raise FormInvalid(name, f"{label or name} is too long (at most {MAX_TEXT} characters)")
    if required and not value:
        raise FormInvalid(name, f"{label or name} is required")
    return value


def choice(name: str, options: Iterable[str], *, label: str | None = None, default: str | None = None) -> str:
    value = request.form.get(name, default or "")
    allowed = list(options)
    if value not in allowed:
        raise FormInvalid(name, f"{label or name} must be one of: {', '.join(allowed)}")
    return value


def optional_int(name: str, *, label: str | None = None, low: int = 0, high: int = 10**9) -> int | None:
    """A whole number, or None for an empty field (``inherit``)."""
    raw = request.form.get(name, "").strip()
    if raw == "":
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise FormInvalid(name, f"{label or name} must be a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise FormInvalid(name, f"{label or name} must be between {low} and {high}")
    return value


def new_password(name: str = "password", confirm: str = "password_confirm") -> str:
    """A password typed twice (never stripped: spaces are part of it)."""
    password = request.form.get(name, "")
    if not password:
        raise FormInvalid(name, "a password is required")
    if password != request.form.get(confirm, ""):
        raise FormInvalid(confirm, "the two passwords differ")
    return password


def utc_time(value: str, *, field: str, label: str) -> int | None:
    """``2024-05-01T13:45`` (a datetime-local field, read as UTC) as epoch seconds; None when empty."""
    value = value.strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return calendar.timegm(time.strptime(value, fmt))
        except ValueError:
            continue
    raise FormInvalid(field, f"{label} must be a date and time like 2024-05-01T13:45 (UTC)")
