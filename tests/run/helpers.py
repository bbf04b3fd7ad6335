"""Helpers for the `rkbench run` tests: the CLI as a user runs it (a subprocess with an
isolated build cache, store, report folder and HOME) and readers for what it leaves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.model_cli import CLS_OPTIONS

#: The board's Python for SSH boards on this machine: this venv's (numpy, onnxruntime,
#: rknn-toolkit2); the system python3 has none of them.
BOARD_PYTHON = sys.executable
#: Few inputs, short measurements: the whole folder must stay within a few minutes.
QUICK = ["--input-count", "2", "--min-runs", "20", "--min-seconds", "0.3"]


@dataclass
class Rk:
    """`python -m rkbench ...` with RKBENCH_CACHE (shared: builds and analyses are cached
    across the session) and HOME (the local board's cache and lock live under it)."""

    cache: Path
    home: Path
    extra_env: dict = field(default_factory=dict)

    def env(self, **overrides) -> dict:
        env = {**os.environ, "RKBENCH_CACHE": str(self.cache), "HOME": str(self.home), **self.extra_env}
        env.pop("RKBENCH_DB", None)
        env.pop("RKBENCH_BOARD_PYTHON", None)
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "rkbench", *map(str, args)]

    def __call__(self, *args, timeout: float = 600, **env) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        # whatever happens, the user sees one line, never a Python traceback
        assert "Traceback" not in done.stderr, done.stderr[-4000:]
        assert "Traceback" not in done.stdout, done.stdout[-4000:]
        return done

    def popen(self, *args, **env) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(**env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    # -- what the store says ----------------------------------------------------------
    def history(self, db: Path) -> list[dict]:
        done = self("history", "--json", "--db", db, "-n", "100")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def show(self, db: Path, run_id) -> dict:
        done = self("show", str(run_id), "--db", db, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def export(self, db: Path, run_id) -> dict:
        done = self("export", str(run_id), "--db", db, "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def model_args(model: Path, dataset: Path, *extra) -> list[str]:
    return ["--model", model, "--dataset", dataset, *CLS_OPTIONS, *QUICK, *extra]


def ssh_args(server, ssh_home: Path, ssh_client_key: Path, tmp_path: Path) -> list:
    """How a user names a loopback sshd board: its address, the board's Python (this venv's:
    numpy, onnxruntime, rknn-toolkit2; the system python3 has none) and the SSH files."""
    config = tmp_path / "ssh_config"
    config.write_text("# empty: everything is on the command line\n")
    return [
        "--board",
        server.board,
        "--python",
        BOARD_PYTHON,
        "--known-hosts",
        ssh_home / ".ssh" / "known_hosts",
        "--identity",
        ssh_client_key,
        "--ssh-config",
        config,
        "--connect-timeout",
        "10",
    ]


def explain(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"


def run_ids(stdout: str) -> list[int]:
    match = re.search(r"^run ids ([\d, ]+) in ", stdout, re.M)
    assert match, stdout
    return [int(x) for x in match.group(1).split(",")]


def deploy_line(stdout: str) -> tuple[int, int, int]:
    """(bytes pushed, files pushed, files reused) from the terminal's deploy line."""
    match = re.search(
        r"^deploy: (\d+) bytes pushed \((\d+) file\(s\)\), (\d+) file\(s\) already on the board", stdout, re.M
    )
    assert match, stdout
    return tuple(int(x) for x in match.groups())  # type: ignore[return-value]


def junit_cases(path: Path) -> list[ET.Element]:
    return ET.parse(path).getroot().findall(".//testcase")


def outputs_vs(run: dict, reference: str) -> list[dict]:
    return [o for o in run["outputs"] if o["reference"] == reference]


# -- processes ------------------------------------------------------------------------
def children(pid: int) -> set[int]:
    """Every descendant of `pid` now (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def processes_mentioning(text: str) -> dict[int, str]:
    """Live (non-zombie) processes whose command line contains `text` (a unique tmp path:
    only the processes this test started can match)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
