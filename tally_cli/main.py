"""The ``tally`` command: each package owns its click group; this module assembles them."""

from __future__ import annotations

import click

from tally_runtime.cli_errors import TallyGroup

from .demo import demo


@click.group(cls=TallyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tallystick", prog_name="tally")
def cli() -> None:
    """tallystick: Kerberos-style ticket authentication for HTTP services.

    Configuration comes from the environment: TALLY_REDIS_URL (unset: the
    embedded, non-persistent store), TALLY_REALM, TALLY_KDC_URL, TALLY_CCACHE,
    TALLY_MASTER_KEY_FILE, TALLY_MAX_SKEW.
    """


def _assemble() -> None:
    from client_sdk.cli import client_commands
    from kdc.cli import admin_group, kdc_group
    from relying_service.cli import service_group
    from relying_service.diagnose_cli import diagnose_command

    cli.add_command(kdc_group, "kdc")
    cli.add_command(admin_group, "admin")
    cli.add_command(service_group, "service")
    for command in client_commands:
        cli.add_command(command)
    cli.add_command(demo)
    cli.add_command(diagnose_command)


_assemble()
