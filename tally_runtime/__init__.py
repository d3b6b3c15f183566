"""Adapters shared by the KDC, relying services and CLI: settings, Redis, logs, HTTP errors.

The protocol core (``tally_protocol``) stays free of I/O; everything here is
the I/O around it that more than one component needs.
"""
