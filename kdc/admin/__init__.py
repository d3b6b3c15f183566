"""Administration of a realm: who may do what (``acl``), admin accounts, ticket and lockout policies,
the audit log, and ``AdminOperations``, the one place every admin action is checked and audited.

The JSON API (``api``), the ``tally admin`` CLI (locally or ``--remote``) and the web UI all go
through ``AdminOperations``; none of them checks permissions or writes audit records itself.
Importing this package imports nothing: the KDC's hot path pulls in only ``policies``.
"""
