"""The printed table and the JSON file of raw samples."""

import json
import os
import platform
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _number(value, unit):
    if unit == "ratio":
        return f"{value:.2f}"
    if unit in ("ms", "MiB", "us"):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def table(db, figures):
    """Return the report for one database as text: figure, autotask, reference, ratio."""
    head = ("figure", "unit", "autotask", "reference (same run)", "value", "ratio")
    lines = []
    for figure in figures:
        references = figure.references or [("", None)]
        for index, (label, value) in enumerate(references):
            ratio = "" if value in (None, 0) else f"{figure.autotask / value:.2f}"
            lines.append(
                (
                    figure.name if index == 0 else "",
                    figure.unit if index == 0 else "",
                    _number(figure.autotask, figure.unit) if index == 0 else "",
                    label,
                    "" if value is None else _number(value, figure.unit),
                    ratio,
                )
            )
        if figure.note:
            lines.append(("", "", "", f"({figure.note})", "", ""))
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    right = {2, 4, 5}

    def fmt(row):
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    title = f"autotask benchmarks on {db} (ratio = autotask / reference)"
    return "\n".join([title, rule, fmt(head), rule, *map(fmt, lines), rule])


def environment(db):
    """Facts about the machine and software the figures were measured on."""
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "database": db,
    }
    import django

    info["django"] = django.get_version()
    if db == "postgresql":
        from benchmarks import harness

        info["server"] = harness.execute("SELECT version()")[0][0]
        import psycopg

        info["psycopg"] = psycopg.__version__
    else:
        info["sqlite"] = sqlite3.sqlite_version
    return info


def save(db, suite, args, started):
    """Write the raw samples of one database's run; return the file path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    path = RESULTS_DIR / f"{stamp}-{db}.json"
    data = {
        "started": started,
        "seconds": time.time() - started,
        "options": vars(args),
        "environment": environment(db),
        "figures": [asdict(figure) for figure in suite.figures],
        "samples": suite.samples,
        "extra": suite.extra,
    }
    path.write_text(json.dumps(data, indent=1, default=str))
    return path
