"""JUnit XML for CI (Jenkins, GitLab): one testcase per model x board x core mask.

    <testsuites name="rkbench" tests failures errors time>
      <testsuite name="rkbench.<board>.<model>[<core mask>]" tests="1" ...>   one per run
        <properties> backend, SoC, p50_ms, p99_ms, cos_min_fp32, ... </properties>
        <testcase classname="rkbench.<board>" name="<model>[<core mask>]" time="<measurement s>">
          <failure type="threshold" message="max_p99_ms: 14.2 ms > limit 12 ms"/>  one per breach
          <error type="failed" message="..."/>                                    run failed/aborted
          <system-out>the terminal summary of the run</system-out>

Each run gets its own <testsuite> because the common JUnit schema (Jenkins' junit-10.xsd)
has <properties> on a testsuite, not on a testcase: this way the per-run properties
stay valid for every reader. Dots in the board name become "_" in the classname, or
Jenkins would split "rkbench.192.168.1.20" into packages.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from rkbench.report import common as c
from rkbench.report.terminal import run_block
from rkbench.results.model import RunResult

# XML 1.0 has no place for most control characters, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def x(text: object) -> str:
    return _NOT_XML.sub("?", "" if text is None else str(text))


def classname(result: RunResult, suite_name: str = "rkbench") -> str:
    return f"{suite_name}.{result.board.replace('.', '_')}"


def case_name(result: RunResult) -> str:
    return f"{result.model}[{c.core_mask_text(result)}]"


def properties(result: RunResult) -> dict[str, str]:
    stats = c.latency_stats(result)
    props: dict[str, object] = {
        "backend": result.backend,
        "board": result.board,
        "soc": result.board_soc,
        "core_mask": result.core_mask,
        "model": result.model,
        "model_sha256": result.model_sha256,
        "status": result.status,
        "run_id": result.run_id,
        "group": result.group,
        "suite": result.suite,
    }
    if stats is not None:
        props.update(
            samples=stats.n,
            p50_ms=f"{stats.p50_ms:.4f}",
            p99_ms=f"{stats.p99_ms:.4f}",
            mean_ms=f"{stats.mean_ms:.4f}",
            std_ms=f"{stats.std_ms:.4f}",
        )
    for reference, key in (("fp32", "fp32"), ("simulator", "sim")):
        for name, value in (
            (f"cos_mean_{key}", c.mean_cos(result, reference)),
            (f"cos_min_{key}", c.worst_cos(result, reference)),
            (f"top1_{key}", c.top1(result, reference)),
        ):
            if value is not None:
                props[name] = f"{value:.6f}"
    rss = c.peak_rss_mb(result)
    if rss is not None:
        props["peak_rss_mib"] = f"{rss:.1f}"
    props["throttled"] = str(result.throttled).lower()
    for key in ("verdict_stored_baseline", "verdict_confirmed", "board_drift"):  # nightly cells
        if result.settings.get(key):
            props[key] = result.settings[key]
    for key in ("toolkit", "rknn_toolkit2", "librknnrt", "driver", "npu_driver", "runner"):
        if key in result.versions:
            props[f"version_{key}"] = result.versions[key]
    return {k: x(v) for k, v in props.items() if v is not None}


def _time(seconds: float | None) -> str:
    return f"{max(0.0, seconds or 0.0):.3f}"


def build_junit(results: Sequence[RunResult], suite_name: str = "rkbench", timestamp: str | None = None) -> ET.Element:
    timestamp = timestamp or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    hostname = socket.gethostname()
    root = ET.Element("testsuites", name=x(suite_name))
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    for r in results:
        seconds = c.measurement_seconds(r)
        verdict = c.outcome(r)
        failures = 1 if verdict == c.FAIL else 0
        errors = 1 if verdict == c.ERROR else 0
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": x(f"{suite_name}.{r.board}.{case_name(r)}"),
                "tests": "1",
                "failures": str(failures),
                "errors": str(errors),
                "skipped": "0",
                "time": _time(seconds),
                "timestamp": x((r.started or timestamp)[:19]),
                "hostname": x(hostname),
            },
        )
        props = ET.SubElement(suite, "properties")
        for name, value in properties(r).items():
            ET.SubElement(props, "property", name=name, value=value)
        case = ET.SubElement(
            suite, "testcase", classname=x(classname(r, suite_name)), name=x(case_name(r)), time=_time(seconds)
        )
        if verdict == c.ERROR:
            err = ET.SubElement(case, "error", type=x(r.status), message=x(c.error_text(r)))
            err.text = x(c.error_text(r))
        for t in c.failed_thresholds(r):
            fail = ET.SubElement(case, "failure", type="threshold", message=x(c.threshold_text(t)))
            fail.text = x(
                f"{t.name}: value {t.value if t.value is None else format(t.value, '.6g')}, "
                f"limit {t.limit:.6g}" + (f"\n{t.detail}" if t.detail else "")
            )
        out = ET.SubElement(case, "system-out")
        out.text = x("\n".join(run_block(r)))
        totals["tests"] += 1
        totals["failures"] += failures
        totals["errors"] += errors
        totals["time"] += seconds or 0.0
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", _time(totals["time"]))
    return root


def write_junit(results: Sequence[RunResult], path: str | os.PathLike, suite_name: str = "rkbench") -> Path:
    """Write the JUnit XML to `path` (atomically); returns the path."""
    path = Path(path)
    tree = ET.ElementTree(build_junit(results, suite_name))
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
    return path
