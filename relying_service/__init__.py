"""The relying service's side: verify ``Authorization: Tally ...`` and prove the response.

``Verifier`` is the adapter around the pure ``verify_ap_request`` (replay claim
last, fail closed); ``TicketAuth`` (Flask) and ``TicketAuthMiddleware`` (any
WSGI app) are thin wrappers that build the request binding and map errors.
"""

from __future__ import annotations

from .flask_ext import TicketAuth
from .middleware import TicketAuthMiddleware
from .request_binding import BindingConfig, PublicUrl, binding_from_environ
from .verifier import Verifier

__all__ = ["BindingConfig", "PublicUrl", "TicketAuth", "TicketAuthMiddleware", "Verifier", "binding_from_environ"]
