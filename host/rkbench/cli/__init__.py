"""The rkbench command line: thin, it parses options and calls the modules that do the work.

One module per group of commands: model.py (build, analyze, inspect), hybrid.py, run.py (run, demo),
boards.py (board info, doctor, provision), lab.py (boards, nightly, baseline), results.py
(history, show, compare, export).
"""

from __future__ import annotations

import errno
import importlib
import signal
import sys

import click

from rkbench import __version__
from rkbench.errors import RkbenchError

# Which module holds each command: a command's module (and what it imports: the toolkit
# worker, paramiko, onnxruntime, ...) is loaded only when that command runs.
COMMAND_MODULES = {
    "build": "model",
    "analyze": "model",
    "inspect": "model",
    "hybrid": "hybrid",
    "run": "run",
    "demo": "run",
    "board": "boards",
    "doctor": "boards",
    "provision": "boards",
    "boards": "lab",
    "nightly": "lab",
    "baseline": "lab",
    "history": "results",
    "show": "results",
    "compare": "results",
    "export": "results",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(name)
        if module is None:
            return None
        commands = importlib.import_module(f".{module}", __package__).COMMANDS
        return next(command for command in commands if command.name == name)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="rkbench")
def cli() -> None:
    """Build RKNN models, measure quantization error, benchmark on Rockchip boards."""


def main(argv: list[str] | None = None) -> int:
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
