"""``tally service``: run the demo relying service."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask

from tally_protocol.errors import ConfigurationError
from tally_runtime.cli_errors import TallyGroup
from tally_runtime.keytab_file import read_keytab
from tally_runtime.logs import configure
from tally_runtime.settings import Settings

from .demo_app import create_demo_app

DEFAULT_PORT = 8751


def demo_app_factory(keytab: Path, settings: Settings) -> Callable[[], Flask]:
    """What each server worker calls to build its own app (its own Redis connections, its own SIGHUP reload)."""
    return functools.partial(create_demo_app, keytab_path=keytab, settings=settings,
                             test_config={"TALLY_RELOAD_ON_SIGHUP": True})


@click.group("service", cls=TallyGroup)
def service_group() -> None:
    """Run a relying service that accepts Tally tickets."""


@service_group.command()
@click.option("--keytab", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The service keytab (from `tally admin add-service`).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes [default: 2 with TALLY_REDIS_URL, else 1].")
def serve(keytab: Path, host: str, port: int, workers: int | None) -> None:
    """Serve the demo service (GET /whoami, POST /echo) under gunicorn.

    The replay cache is TALLY_REDIS_URL; unset, it is the embedded store,
    which lives in one process, so only one worker can then be used.
    SIGHUP makes every worker reload the keytab (after a rotation), without
    a restart; a ticket under an unknown key version does too.
    """
    configure()
    settings = Settings.load()
    if settings.redis_url is None:
        # Each process would have its own cache: a request replayed to
        # another worker would be accepted.
        if workers not in (None, 1):
            raise ConfigurationError("the embedded store is per process; set TALLY_REDIS_URL to run several workers")
        workers = 1  # each worker's app announces the embedded store in the log
    keytab = keytab.expanduser().resolve()
    service, keyset = read_keytab(keytab)  # fail here, with one clear line, rather than in each worker
    click.echo(f"service {service} (key versions {keyset.versions}) on http://{host}:{port}", err=True)

    from kdc.serve import serve_wsgi

    serve_wsgi(demo_app_factory(keytab, settings), host=host, port=port, workers=workers or 2)
