"""The ``tally`` command: each package owns its click group; this module assembles them."""

from __future__ import annotations

from pathlib import Path

import click

from tally_runtime.cli_errors import TallyGroup
from tally_runtime.settings import Settings, use_config_file

from .demo import demo


@click.group(cls=TallyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tallystick", prog_name="tally")
@click.option("--config", "config_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML configuration file [default: TALLY_CONFIG, else /etc/tally/tally.toml if it exists].")
def cli(config_file: Path | None) -> None:
    """tallystick: Kerberos-style ticket authentication for HTTP services.

    Settings come from the configuration file (--config), the environment
    overriding it: TALLY_REDIS_URL ([redis] url; unset: the embedded,
    non-persistent store), TALLY_REALM (realm), TALLY_KDC_URL, TALLY_CCACHE,
    TALLY_MASTER_KEY_FILE, TALLY_MAX_SKEW, ...
    """
    if config_file is not None:
        use_config_file(config_file)
        Settings.load()  # a mistake in the file is reported now, before the command runs


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
