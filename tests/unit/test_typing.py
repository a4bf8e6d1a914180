"""The public API's type hints: mypy infers handles and results, and refuses wrong options.

Runs mypy (the dev extra installs it) on tests/typing/check_options.py, where
each line that must be refused ends with ``# E: <code>``.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ROOT / "tests" / "typing" / "check_options.py"
EXPECTED = re.compile(r"#\s*E:\s*([\w-]+)\s*$")
REPORTED = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)  \[(?P<code>[\w-]+)\]$")


def expected_errors():
    lines = CHECKED.read_text().splitlines()
    return {(number, m.group(1)) for number, line in enumerate(lines, 1) if (m := EXPECTED.search(line))}


def test_mypy_infers_the_public_types_and_reports_wrong_uses(tmp_path):
    expected = expected_errors()
    assert len(expected) >= 8  # the file has its wrong uses
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            "--show-error-codes",
            "--no-error-summary",
            "--no-pretty",
            str(CHECKED.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode in (0, 1), run.stderr or run.stdout
    reported = set()
    for line in run.stdout.splitlines():
        if match := REPORTED.match(line):
            assert Path(match["path"]).resolve() == CHECKED, line  # nothing in autotask/ itself
            reported.add((int(match["line"]), match["code"]))
    missing, unexpected = expected - reported, reported - expected
    assert not missing and not unexpected, f"missing: {sorted(missing)}\nunexpected:\n{run.stdout}"


def test_every_setting_has_a_type_for_checkers():
    from autotask.conf import DEFAULTS, Settings

    assert set(Settings.__annotations__) == set(DEFAULTS)
