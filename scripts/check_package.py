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
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARNING = re.compile(r"warn|deprecat|absent from", re.IGNORECASE)
# pip's own words about this machine's pip configuration (an extra index that
# is not there), not about the package being installed.
PIP_CONFIG_NOTE = re.compile(r"Location '[^']*' is ignored: it is neither a file nor a directory")


def fail(message):
    print(f"check_package: {message}", file=sys.stderr)
    sys.exit(1)


def tracked_copy(dest):
    """Copy the files git tracks into ``dest``: the build sees what a clone holds, and
    writes its egg-info there, not beside tox envs building the same tree."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in out.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def build(source, outdir):
    env = dict(os.environ)
    # With it set, setuptools warns that it cannot byte-compile: that says
    # something about the environment, not the package.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(source)],
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


def run(command, what, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"  # pip's nag about itself
    proc = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode:
        fail(f"{what} failed:\n{output}")
    return output


def pip_install(venv, *args):
    args = [str(arg) for arg in args]
    output = run([venv / "bin" / "python", "-m", "pip", "install", *args], f"pip install {' '.join(args)}")
    warnings = [
        line for line in output.splitlines() if WARNING.search(line) and not PIP_CONFIG_NOTE.search(line)
    ]
    if warnings:
        fail(f"pip install {' '.join(args)} printed warnings:\n" + "\n".join(warnings))


def check_install(wheel, source, tmp):
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", venv], "creating a virtualenv")
    # Today's pip, as a user has it: it shows the build backend's warnings.
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--upgrade", "pip"], "upgrading pip")
    pip_install(venv, wheel)
    example = tmp / "example"
    ignore = shutil.ignore_patterns("db.sqlite3*", "autotask.log", "__pycache__")
    shutil.copytree(ROOT / "example", example, ignore=ignore)
    python = venv / "bin" / "python"
    where = run([python, "-c", "import autotask; print(autotask.__file__)"], "import autotask", cwd=example)
    if not where.strip().startswith(str(venv)):
        fail(f"the example imported autotask from {where.strip()}, not from the installed wheel")
    run([python, "manage.py", "migrate", "-v", "0"], "the example's migrate", cwd=example)
    demo = run([python, "manage.py", "demo"], "the example's demo", cwd=example)
    if "Demo finished." not in demo:
        fail(f"the demo did not finish:\n{demo}")
    pip_install(venv, "-e", source)
    print(f"check_package: {wheel.name} installs without warnings and runs the demo; so does pip install -e")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        source = tracked_copy(Path(tmp) / "src")
        wheel, sdist = build(source, Path(tmp) / "dist")
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
        if "--install" in sys.argv[1:]:
            check_install(wheel, source, Path(tmp))


if __name__ == "__main__":
    main()
