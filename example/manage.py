#!/usr/bin/env python
"""The demo project's manage.py."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Use the autotask in this checkout even when it is not installed.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
