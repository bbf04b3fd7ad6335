"""The reports of `rkbench run`: pure functions from a list of `RunResult` (one per model
x board x core mask) to text or files.

    summary(results, history=None, color=False) -> str     terminal.py
    write_html(results, path, history=None, title=...)     html.py (one self-contained file)
    write_junit(results, path, suite_name="rkbench")       junit.py
    write_json(results, path, samples=False)               jsonreport.py; read_json() reads it back

`history` maps a `RunKey` (model, board, backend, core mask; `run_key(result)` makes it)
to the previous runs of that key as `HistoryPoint`s, in any order (they are sorted by
start time; the run itself is left out by run_id). Rows of the store's `RunSummary` (or
anything with the same attribute names) work as points too; `group_history(rows)` builds
the dict from such rows.
"""

from __future__ import annotations

from rkbench.report.common import History, HistoryPoint, RunKey, group_history, run_key
from rkbench.report.html import write_html
from rkbench.report.jsonreport import SCHEMA_VERSION, read_json, write_json
from rkbench.report.junit import write_junit
from rkbench.report.terminal import summary

__all__ = [
    "History",
    "HistoryPoint",
    "RunKey",
    "run_key",
    "group_history",
    "summary",
    "write_html",
    "write_junit",
    "write_json",
    "read_json",
    "SCHEMA_VERSION",
]
