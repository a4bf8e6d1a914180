"""Build the sdist and the wheel and check what a user would install.

Run by the lint tox env (``python scripts/check_package.py``).  It fails when:

* the build prints a warning (setuptools' deprecations, "absent from packages", ...);
* ``twine check --strict`` finds the metadata or the README unfit for the package index;
* the wheel lacks a file of the ``autotask`` package that git tracks (templates,
  migrations, management commands, ...) or holds anything else (tests,
  benchmarks, the example project, the docs);
* the metadata's version is not ``autotask.__version__``, the licence is not the
  SPDX expression, or the Python / Django classifiers differ from what tox.ini tests.
"""

import configparser
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARNING = re.compile(r"warn|deprecat|absent from", re.IGNORECASE)


def fail(message):
    print(f"check_package: {message}", file=sys.stderr)
    sys.exit(1)


def build(outdir):
    env = dict(os.environ)
    # With it set, setuptools warns that it cannot byte-compile: that says
    # something about the environment, not the package.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode:
        fail(f"the build failed:\n{output}")
    warnings = [line for line in output.splitlines() if WARNING.search(line)]
    if warnings:
        fail("the build printed warnings:\n" + "\n".join(warnings))
    wheels, sdists = list(outdir.glob("*.whl")), list(outdir.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        fail(f"expected one wheel and one sdist, got {sorted(p.name for p in outdir.iterdir())}")
    return wheels[0], sdists[0]


def tracked_package_files():
    out = subprocess.run(
        ["git", "ls-files", "autotask"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {line for line in out.splitlines() if line}


def check_wheel(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        metadata = HeaderParser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
    missing = sorted(tracked_package_files() - names)
    if missing:
        fail(f"the wheel lacks {missing}")
    stray = sorted(n for n in names if not (n.startswith("autotask/") or n.startswith(dist_info + "/")))
    if stray:
        fail(f"the wheel holds files outside the package: {stray}")
    untracked = sorted(n for n in names if n.startswith("autotask/") and n not in tracked_package_files())
    if untracked:
        fail(f"the wheel holds files git does not track: {untracked}")
    return metadata


def tested_versions():
    """The Python and Django versions tox.ini's envlist runs, as classifier suffixes."""
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = tox["tox"]["envlist"].split()
    pythons, djangos = set(), set()
    for env in envs:
        for factor in env.split("-"):
            if m := re.fullmatch(r"py3(\d+)", factor):
                pythons.add(f"3.{m[1]}")
            elif m := re.fullmatch(r"django(\d)(\d+)", factor):
                djangos.add(f"{m[1]}.{m[2]}")
    return pythons, djangos


def check_metadata(metadata):
    sys.path.insert(0, str(ROOT))
    from autotask import __version__

    if metadata["Version"] != __version__:
        fail(f"metadata version {metadata['Version']} is not autotask.__version__ {__version__}")
    if metadata["License-Expression"] != "MIT":
        fail(f"License-Expression is {metadata['License-Expression']!r}, not 'MIT'")
    classifiers = metadata.get_all("Classifier") or []
    if any(c.startswith("License ::") for c in classifiers):
        fail("a licence classifier is deprecated beside License-Expression")
    pythons, djangos = tested_versions()
    last = {c: c.rsplit(" :: ", 1)[1] for c in classifiers}
    declared_pythons = {last[c] for c in classifiers if re.fullmatch(r".*Python :: 3\.\d+", c)}
    declared_djangos = {last[c] for c in classifiers if c.startswith("Framework :: Django :: ")}
    if declared_pythons != pythons:
        fail(f"Python classifiers {sorted(declared_pythons)} differ from tox.ini's {sorted(pythons)}")
    if declared_djangos != djangos:
        fail(f"Django classifiers {sorted(declared_djangos)} differ from tox.ini's {sorted(djangos)}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        wheel, sdist = build(Path(tmp))
        metadata = check_wheel(wheel)
        check_metadata(metadata)
        twine = subprocess.run(
            [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
            capture_output=True,
            text=True,
        )
        if twine.returncode:
            fail(f"twine check failed:\n{twine.stdout}{twine.stderr}")
        print(f"check_package: {wheel.name} and {sdist.name} build without warnings and pass twine check")


if __name__ == "__main__":
    main()
