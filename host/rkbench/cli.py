"""The rkbench command line: thin, it parses options and calls the modules that do the work."""

from __future__ import annotations

import errno
import signal
import sys

import click

from . import __version__
from .errors import RkbenchError


@click.group()
@click.version_option(__version__, prog_name="rkbench")
def cli() -> None:
    """Build RKNN models, measure quantization error, benchmark on Rockchip boards."""


def _register_commands() -> None:
    # Each room keeps its commands in its own module; they are attached here.
    from . import cli_boards, cli_fleet, cli_hybrid, cli_model, cli_results, cli_run

    for module in (cli_model, cli_hybrid, cli_run, cli_boards, cli_fleet, cli_results):
        for command in module.COMMANDS:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    _register_commands()
    # A CI job's timeout sends SIGTERM: unwind normally so runs are marked aborted, runners
    # get their stdin closed and labgrid places are released.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        cli.main(args=argv, prog_name="rkbench", standalone_mode=False)
    except RkbenchError as err:
        click.echo(f"rkbench: error: {err}", err=True)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("rkbench: aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return 2
    except click.exceptions.Exit as err:
        return err.exit_code
    except OSError as err:
        # A file we could not write or read that no step above caught: one line, not a traceback.
        where = f" ({err.filename})" if err.filename else ""
        if err.errno == errno.ENOSPC:
            click.echo(f"rkbench: error: disk full{where}: free some space and run again", err=True)
            return 7
        click.echo(f"rkbench: error: {err.strerror or err}{where}", err=True)
        return 4
    except KeyboardInterrupt:
        click.echo("rkbench: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
