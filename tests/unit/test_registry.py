"""Finding a task by the name a row holds: only declared tasks, and no standard-library imports."""

import sys

import pytest

from autotask.definitions import registry
from autotask.exceptions import NotADeclaredTask


@pytest.mark.parametrize("path", ["this.s", "antigravity.fly", "idlelib.idle.main"])
def test_a_row_never_makes_a_worker_import_a_standard_library_module(path, capsys):
    top = path.split(".")[0]
    if top in sys.modules:
        pytest.skip(f"{top} was imported by something else in this process")
    with pytest.raises(NotADeclaredTask, match="standard library"):
        registry.get(path)
    assert top not in sys.modules
    assert capsys.readouterr().out == ""  # importing `this` would have printed the Zen


def test_a_standard_library_module_already_imported_is_still_refused_by_name():
    with pytest.raises(NotADeclaredTask, match="not a declared task"):
        registry.get("os.system")


def test_a_declared_task_is_found_by_its_name():
    definition = registry.get("tests.app.tasks.add")
    assert definition.name == "tests.app.tasks.add"
