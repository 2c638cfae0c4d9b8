"""``junit.xml`` for CI: one testcase per criterion and one for safety.

The safety testcase is always present: it fails when the run had a violation and the scenario
requires safety, and is skipped (with the violations in its message) when the scenario does not
require it. The ``safety`` criterion itself is represented by that testcase, not twice.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from orchestrator.report.model import CriterionResult, Report


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")


def _criterion_message(criterion: CriterionResult) -> str:
    value = "missing" if criterion.value is None else f"{criterion.value}"
    return (
        f"{criterion.name}: value {value} {criterion.unit}, threshold {criterion.threshold} "
        f"{criterion.unit}: {criterion.explanation}"
    ).replace("  ", " ")


def junit_element(report: Report) -> ET.Element:
    """The ``<testsuites>`` element of ``report``."""
    classname = f"aitbc_testnet.{report.scenario}"
    suites = ET.Element("testsuites", name="aitbc-testnet")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"{report.scenario} ({report.platform}{', simulated' if report.simulated else ''})",
        timestamp=report.started.isoformat(),
    )
    failures = skipped = tests = 0
    for criterion in report.criteria:
        if criterion.name == "safety":
            continue
        tests += 1
        case = _case(suite, f"{classname}.criteria", criterion.name)
        message = _criterion_message(criterion)
        if criterion.passed:
            ET.SubElement(case, "system-out").text = message
        else:
            failures += 1
            ET.SubElement(case, "failure", message=message, type="criterion").text = message
    tests += 1
    case = _case(suite, f"{classname}.safety", "safety")
    required = any(criterion.name == "safety" for criterion in report.criteria)
    details = "\n".join(
        f"{violation.kind}: {violation.message}" for violation in report.safety.violations
    )
    if report.safety.ok:
        ET.SubElement(case, "system-out").text = (
            f"no violation (heights 1..{report.safety.checked_height} compared on validators "
            f"{report.safety.validators})"
        )
    elif required:
        failures += 1
        summary = f"{len(report.safety.violations)} safety violation(s)"
        ET.SubElement(case, "failure", message=summary, type="safety").text = details
    else:
        skipped += 1
        ET.SubElement(
            case, "skipped", message="the scenario does not require safety; violations: " + details
        )
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suites.set("tests", str(tests))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return suites


def write_junit(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(junit_element(report)).write(path, encoding="utf-8", xml_declaration=True)
    return path
