"""The client SDK: tickets from the KDC, and HTTP requests signed with them.

``Client`` holds a principal's credentials (key file, password or the
credential cache ``tally login`` wrote) and signs requests; ``TallyAuth`` and
``TallyHttpxAuth`` plug the same signing and mutual-authentication checks into
``requests`` and ``httpx``.  ``flow`` is the pure client role underneath.
"""

from __future__ import annotations

from .ccache import CredentialCache
from .client import Client
from .flow import ApContext, Credential
from .httpx_auth import TallyHttpxAuth
from .kdc_client import KdcClient
from .requests_auth import TallyAuth

__all__ = ["ApContext", "Client", "Credential", "CredentialCache", "KdcClient", "TallyAuth", "TallyHttpxAuth"]
