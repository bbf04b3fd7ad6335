"""JUnit XML: counts, failures per breached threshold, errors for failed runs, properties,
and the structure of the common schema (Jenkins' junit-10.xsd) checked element by element."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from rkbench.report import write_junit

from .synthetic import run

# junit-10.xsd (the Jenkins xunit plugin's JUnit schema): allowed children and attributes.
SCHEMA = {
    "testsuites": ({"testsuite"}, {"name", "time", "tests", "failures", "errors"}, set()),
    "testsuite": (
        {"testsuite", "properties", "testcase", "system-out", "system-err"},
        {
            "name",
            "tests",
            "failures",
            "errors",
            "group",
            "time",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
        },
        {"name", "tests", "failures", "errors"},
    ),
    "properties": ({"property"}, set(), set()),
    "property": (set(), {"name", "value"}, {"name", "value"}),
    "testcase": (
        {"skipped", "error", "failure", "system-out", "system-err"},
        {"name", "time", "classname", "group"},
        {"name"},
    ),
    "failure": (set(), {"type", "message"}, set()),
    "error": (set(), {"type", "message"}, set()),
    "skipped": (set(), {"type", "message"}, set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")


def check_schema(element: ET.Element) -> None:
    children, attrs, required = SCHEMA[element.tag]
    assert set(element.attrib) <= attrs, (element.tag, set(element.attrib) - attrs)
    assert required <= set(element.attrib), (element.tag, required - set(element.attrib))
    if element.tag in ("testsuites", "testsuite") and "time" in element.attrib:
        assert SUREFIRE_TIME.fullmatch(element.get("time")), element.get("time")
    for child in element:
        assert child.tag in children, (element.tag, child.tag)
        check_schema(child)


def load(results, tmp_path):
    path = write_junit(results, tmp_path / "junit.xml")
    return ET.parse(path).getroot()


def test_counts_and_cases(results, tmp_path):
    root = load(results, tmp_path)
    check_schema(root)
    assert root.tag == "testsuites" and root.get("name") == "rkbench"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 3
    assert [c.get("classname") for c in cases] == ["rkbench.board-a_lab", "rkbench.board-a_lab", "rkbench.board-b_lab"]
    assert [c.get("name") for c in cases] == [f"{results[0].model}[0]", f"{results[1].model}[0_1_2]", "yolov5s[0_1_2]"]
    suites = root.findall("testsuite")
    assert sum(int(s.get("tests")) for s in suites) == 3
    assert sum(int(s.get("failures")) for s in suites) == 1
    assert sum(int(s.get("errors")) for s in suites) == 1


def test_failure_per_breached_threshold_with_value_and_limit(results, tmp_path):
    first, second, third = load(results, tmp_path).findall("./testsuite/testcase")
    failures = first.findall("failure")
    assert len(failures) == 1
    assert failures[0].get("type") == "threshold"
    assert failures[0].get("message") == f"max_p99_ms: {results[0].stats.p99_ms:.4g} ms > limit 11 ms"
    assert not second.findall("failure") and not second.findall("error")
    errors = third.findall("error")
    assert len(errors) == 1 and errors[0].get("type") == "failed"
    assert "board lost" in errors[0].get("message")


def test_two_breaches_two_failures_one_failed_test(tmp_path):
    r = run(n=300)
    r.thresholds[0].passed = False
    root = load([r], tmp_path)
    assert len(root.findall("./testsuite/testcase/failure")) == 2
    assert root.get("failures") == "1"


def test_properties_and_time(results, tmp_path):
    suite = load(results, tmp_path).findall("testsuite")[0]
    props = {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}
    s = results[0].stats
    assert props["backend"] == "rknnlite" and props["core_mask"] == "0" and props["soc"] == "RK3588"
    assert float(props["p50_ms"]) == round(s.p50_ms, 4) and float(props["p99_ms"]) == round(s.p99_ms, 4)
    assert float(props["cos_min_fp32"]) == 0.99123 and float(props["cos_min_sim"]) == 0.9999
    assert props["throttled"] == "true"
    case = suite.find("testcase")
    assert abs(float(case.get("time")) - results[0].settings["elapsed_s"]) < 1e-3
    assert "backend rknnlite" in case.find("system-out").text


def test_control_characters_do_not_break_the_xml(tmp_path):
    r = run(n=100, model="bad\x00\x1bname", board="b\x07")
    r.error = None
    root = load([r], tmp_path)
    check_schema(root)
    assert root.find("./testsuite/testcase").get("name") == "bad??name[0]"
