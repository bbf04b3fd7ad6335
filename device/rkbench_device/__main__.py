"""python3 -m rkbench_device {run,info}

run   read ONE JSON line (the run spec) on stdin, stream events as JSON lines on
      stdout; keep stdin open while it runs: closing it ends the runner at once.
info  print the board facts as one JSON object; with --probe-model MODEL.rknn also
      the runtime's own API and driver versions (rknn_init + RKNN_QUERY_SDK_VERSION).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rkbench_device", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="measure a model as the run spec on stdin says")
    run.add_argument(
        "--spec", help="read the run spec from this file instead of stdin (for manual runs; stdin is then not watched)"
    )
    run.add_argument("--root", default="/", help="root of the /proc and /sys trees to read (tests)")
    run.add_argument("--no-watch-stdin", action="store_true", help="do not exit when stdin closes (for manual runs)")
    run.add_argument(
        "--host-heartbeat",
        type=float,
        metavar="S",
        help="the host writes a newline on stdin every second and fetches the outputs "
        "before it closes stdin: exit when no byte came for S seconds, and after "
        "done keep the board lock until stdin closes",
    )
    info = sub.add_parser("info", help="print board facts as one JSON object")
    info.add_argument("--root", default="/", help="root of the /proc and /sys trees to read (tests)")
    info.add_argument("--cache-dir", default="~/.cache/rkbench", help="where rkbench keeps models on the board")
    info.add_argument(
        "--probe-model",
        metavar="PATH.rknn",
        help="init this model with librknnrt and report its API/driver versions (SDK_VERSION)",
    )
    sub.add_parser("version", help="print the runner and protocol versions")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from .runner import run_main

        return run_main(args.spec, args.root, watch_stdin=not args.no_watch_stdin, host_silence_s=args.host_heartbeat)
    if args.command == "info":
        from rkbench_wire import encode_board_info

        from .boardinfo import collect_board_info
        from .stream import stdout_to_stderr

        # librknnrt may print while it loads or inits: keep stdout for the one JSON line
        with stdout_to_stderr():
            line = encode_board_info(collect_board_info(args.root, args.cache_dir, args.probe_model))
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return 0
    if args.command == "version":
        from rkbench_wire import PROTOCOL_VERSION

        from . import __version__

        sys.stdout.write("rkbench_device %s protocol %d\n" % (__version__, PROTOCOL_VERSION))
        return 0
    _parser().print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        # Every event is written and every backend released by now. Skip interpreter
        # teardown: vendor libraries (torch under rknn.api) can hang or print in it.
        os._exit(code)
