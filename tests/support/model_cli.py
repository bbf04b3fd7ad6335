"""Shared by the model command tests: the bundled classifier's options and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from rkbench.model import examples

CLS = examples.EXAMPLES["ppocr-cls"]
CLS_OPTIONS = ["--input-size", "1,3,48,192", "--mean", "127.5,127.5,127.5", "--std", "127.5,127.5,127.5"]


@dataclass
class Cli:
    env: dict

    def __call__(self, *args, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "rkbench", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**self.env, **(env or {})},
            timeout=timeout,
        )
        # No user mistake or toolkit failure may end in a Python traceback.
        assert "Traceback" not in done.stderr, done.stderr
        return done
