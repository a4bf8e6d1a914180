"""Print one closing line over every tox env's JUnit report: 'N passed, N failed, N skipped'."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(folder):
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    reports = sorted(Path(folder).glob("junit-*.xml"))
    for report in reports:
        for suite in ET.parse(report).getroot().iter("testsuite"):
            for key in totals:
                totals[key] += int(suite.get(key, 0))
            keys = ("tests", "failures", "errors", "skipped")
            counts = ", ".join(f"{suite.get(key)} {key}" for key in keys)
            print(f"  {report.stem[len('junit-') :]}: {counts}")
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(f"{passed} passed, {failed} failed, {totals['skipped']} skipped")
    return 0 if reports else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".tox"))
