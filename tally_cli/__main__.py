from tally_cli.main import cli

cli(prog_name="tally")
