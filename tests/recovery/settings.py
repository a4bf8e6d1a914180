"""Settings for the server processes the supervisor tests start (gunicorn, runserver)."""

import importlib
import os

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.recovery.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DEBUG = True

# The runserver test edits a module of its own; importing it here puts it under the autoreloader.
if os.environ.get("AUTOTASK_TEST_RELOAD_MODULE"):
    importlib.import_module(os.environ["AUTOTASK_TEST_RELOAD_MODULE"])
