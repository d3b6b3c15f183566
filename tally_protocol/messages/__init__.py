"""Protocol messages, one file each, named after RFC 4120's."""

from __future__ import annotations

from .ap_rep import EncApRepPart, open_ap_reply, seal_ap_reply
from .ap_req import ApRequest, format_authorization, parse_authorization
from .as_rep import AsReply
from .as_req import AsRequest, PaEncTimestamp
from .authenticator import Authenticator
from .kdc_rep import EncKdcRepPart
from .tgs_rep import TgsReply
from .tgs_req import TgsRequest, TgsRequestBody
from .ticket import EncTicketPart, Ticket

__all__ = [
    "ApRequest",
    "AsReply",
    "AsRequest",
    "Authenticator",
    "EncApRepPart",
    "EncKdcRepPart",
    "EncTicketPart",
    "PaEncTimestamp",
    "TgsReply",
    "TgsRequest",
    "TgsRequestBody",
    "Ticket",
    "format_authorization",
    "open_ap_reply",
    "parse_authorization",
    "seal_ap_reply",
]
