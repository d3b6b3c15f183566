"""The admin web UI: server-rendered pages at ``/admin`` on the KDC's Flask app.

Enabled only when a secret key is configured (``TALLY_ADMIN_SECRET_KEY`` or
``TALLY_ADMIN_SECRET_KEY_FILE``, at least 32 bytes): it signs the session
cookies and CSRF tokens, and every worker must share it.  Without one the
KDC serves no UI (the ticket-authenticated JSON API at ``/admin/api/v1``
works regardless).  Tests and ``tally demo`` may set
``TALLY_ADMIN_EPHEMERAL_KEY`` for a per-process key, announced in the log.

Every action goes through ``kdc.admin.operations.AdminOperations`` as the
logged-in admin account, so permissions and audit are exactly those of the
API and the CLI.  The rooms:

* ``config``: the settings; ``session_cookie``: the signed cookie's flags;
  ``sessions``: server-side session records (idle and absolute timeouts);
  ``csrf``: signed, session-bound form tokens; ``security``: the request
  guard and headers; ``one_time``: secrets shown once;
* ``blueprint``: rendering, the acting admin, error pages; ``forms``: form input;
* one module of views per section: ``auth_views``, ``principal_views``,
  ``policy_views``, ``audit_views``, ``onboarding_views``, ``admin_views``,
  ``status_views``.
"""

from __future__ import annotations

import logging

from flask import Flask

from tally_runtime.settings import Settings

from ...state import kdc_state
from . import admin_views as admin_views
from . import audit_views as audit_views
from . import auth_views as auth_views
from . import onboarding_views as onboarding_views
from . import policy_views as policy_views
from . import principal_views as principal_views
from . import status_views as status_views
from .blueprint import admin_ui
from .config import UiConfig, load_ui_config
from .csrf import CsrfTokens
from .one_time import OneTimeSecrets
from .security import EXTENSION, UiState
from .session_cookie import AdminSessionInterface
from .sessions import UiSessions

#: Importing the view modules registers their routes on ``admin_ui``.
VIEWS = (admin_views, audit_views, auth_views, onboarding_views, policy_views, principal_views, status_views)

__all__ = ["UiConfig", "admin_ui", "init_admin_ui"]


def init_admin_ui(app: Flask, settings: Settings) -> UiConfig | None:
    """Register the UI on ``app`` when a secret key is configured; its configuration, or None (no UI).

    Call after the KDC and admin state exist (``kdc_state``, ``init_admin``).
    """
    kdc = kdc_state(app)
    config = load_ui_config(app.config, settings, kdc.rng)
    if config is None:
        logging.getLogger("tally.admin.ui").info("admin UI disabled: no TALLY_ADMIN_SECRET_KEY configured")
        return None
    app.session_interface = AdminSessionInterface(config)
    app.extensions[EXTENSION] = UiState(
        config=config,
        sessions=UiSessions(kdc.redis, kdc.realm, idle_s=config.idle_timeout_s, lifetime_s=config.session_lifetime_s,
                            clock=kdc.clock, rng=kdc.rng),
        csrf=CsrfTokens(config.secret_keys, max_age_s=config.session_lifetime_s, clock=kdc.clock),
        secrets=OneTimeSecrets(kdc.redis, kdc.realm, clock=kdc.clock, rng=kdc.rng),
    )
    app.register_blueprint(admin_ui)
    return config
