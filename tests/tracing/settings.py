"""Settings of the worker processes the tracing tests start: tracing on, spans to a file.

AUTOTASK_TEST_SPANS names the file; without it the worker has no tracer provider.
"""

import os

from tests.settings import *  # noqa: F403

AUTOTASK_TRACING = True

if os.environ.get("AUTOTASK_TEST_SPANS"):
    from tests.tracing.spans import export_to_file

    export_to_file(os.environ["AUTOTASK_TEST_SPANS"])
