"""Sphinx configuration of autotask's documentation site (``make docs``)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# autodoc imports autotask's modules, which need configured Django settings.
import django  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "autotask"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
    django.setup()

import autotask  # noqa: E402

project = "autotask"
copyright = "2026 The autotask developers"
release = autotask.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
exclude_patterns = ["_build"]
# docs/admin-list.png (taken by tests/browser) is shown by the tutorial and the admin page.
html_theme = "furo"
html_title = f"autotask {release}"
nitpicky = False
