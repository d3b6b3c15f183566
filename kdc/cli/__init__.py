"""``tally kdc`` (initialise and serve the KDC) and ``tally admin`` (administration).

The groups live in ``context``; each module here adds one family of commands
to them, and importing this package registers them all.
"""

from __future__ import annotations

from . import admin_commands, kdc_commands, key_commands, onboarding_commands, principal_commands
from .context import admin_group, kdc_group

__all__ = ["admin_commands", "admin_group", "kdc_commands", "kdc_group", "key_commands", "onboarding_commands",
           "principal_commands"]
