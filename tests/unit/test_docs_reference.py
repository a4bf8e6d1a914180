"""The reference under docs/ names everything the code offers, and nothing it does not.

Each list is read from the code (settings from ``conf.DEFAULTS``, options from the
decorators' signatures or the error an unknown keyword raises, command options
from their parsers, check ids from the checks' source), so a new setting,
option, command, check or signal fails here until the reference documents it.
"""

import inspect
import re
from pathlib import Path

import pytest
from django.core.management import BaseCommand, load_command_class

import autotask
from autotask import conf, exceptions, signals, tasks, testing
from autotask.definitions.options import TaskOptions

ROOT = Path(autotask.__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
PROBE = "not_an_autotask_option"


def read(name):
    return (REFERENCE / name).read_text()


def sections(text):
    """``{title: body}`` for the page's sections (titles underlined with ``=``)."""
    lines = text.splitlines()
    found, title, body = {}, None, []
    for line, underline in zip(lines, [*lines[1:], ""], strict=True):
        if underline and set(underline) == {"="} and len(underline) >= len(line) > 0:
            if title is not None:
                found[title] = "\n".join(body)
            title, body = line.strip(), []
        elif title is not None:
            body.append(line)
    if title is not None:
        found[title] = "\n".join(body)
    return found


def terms(text):
    """The ``literal`` names in the terms of the definition lists in ``text``."""
    found = []
    lines = text.splitlines()
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("``") and following.startswith("    "):
            found.extend(re.findall(r"``([^`]+)``", line))
    return found


def accepted_options(call, *, skip=("func", "self")):
    """The keyword options ``call`` accepts: its named parameters, and where it takes
    ``**options``, the names its error for an unknown keyword lists."""
    parameters = inspect.signature(call).parameters.values()
    names = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    names -= set(skip)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        with pytest.raises(TypeError) as raised:
            call(**{PROBE: 1})
        message = str(raised.value)
        assert PROBE in message and "accepts " in message, message
        names |= {name.strip() for name in message.split("accepts ", 1)[1].split(",")}
    return names


def test_every_setting_is_documented_with_its_default():
    page = read("settings.rst")
    documented = {}
    for match in re.finditer(r"^``AUTOTASK_(\w+)``\n    Default ``([^`]*)``", page, re.MULTILINE):
        documented[match[1]] = match[2]
    assert set(documented) == set(conf.DEFAULTS), "docs/reference/settings.rst against conf.DEFAULTS"
    for name, default in conf.DEFAULTS.items():
        assert documented[name] == repr(default), f"AUTOTASK_{name}'s default"


def _noop():
    pass


@pytest.mark.parametrize(
    ("title", "call"),
    [
        ("``@delayed_task``", tasks.delayed_task),
        ("``@periodic_task``", tasks.periodic_task),
        ("``@cron_task``", tasks.cron_task),
        ("``Task.using``", tasks.Task(_noop, TaskOptions()).using),
    ],
)
def test_every_decorator_option_is_documented(title, call):
    section = sections(read("decorators.rst"))[title]
    accepted = accepted_options(call)
    assert accepted, title
    assert set(terms(section)) == accepted, f"{title} in docs/reference/decorators.rst"


def test_delayed_task_options_are_the_task_options():
    # What .using() and the decorators validate with; documented under @delayed_task.
    assert set(TaskOptions.NAMES) <= set(terms(sections(read("decorators.rst"))["``@delayed_task``"]))


def _commands():
    folder = Path(autotask.__file__).parent / "management" / "commands"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def _own_options(name):
    base = {s for a in BaseCommand().create_parser("manage.py", "x")._actions for s in a.option_strings}
    parser = load_command_class("autotask", name).create_parser("manage.py", name)
    return {s for a in parser._actions for s in a.option_strings} - base


@pytest.mark.parametrize("name", _commands())
def test_every_command_and_option_is_documented(name):
    page = sections(read("commands.rst"))
    assert f"``{name}``" in page, f"{name} has no section in docs/reference/commands.rst"
    assert set(terms(page[f"``{name}``"])) == _own_options(name), name


def test_every_check_id_is_documented():
    source = "\n".join(p.read_text() for p in Path(autotask.__file__).parent.rglob("*.py"))
    ids = set(re.findall(r"""["'](autotask\.[CEW]\d{3})["']""", source))
    assert ids
    assert set(terms(read("checks.rst"))) == ids


def test_every_signal_is_documented():
    sent = {name for name, value in vars(signals).items() if isinstance(value, signals.Signal)}
    assert sent
    assert set(terms(sections(read("signals.rst"))["Signals"])) == sent


@pytest.mark.parametrize("module", [tasks, testing, exceptions])
def test_every_public_name_has_a_reference_entry(module):
    page = read("api.rst")
    names = getattr(module, "__all__", None) or [
        name for name, value in vars(module).items() if inspect.isclass(value) and not name.startswith("_")
    ]
    for name in names:
        value = getattr(module, name)
        if isinstance(value, int) and f"``{name}``" in page:
            continue  # a status constant, listed by name
        assert re.search(rf"^\.\. auto\w+:: {module.__name__}\.{name}$", page, re.MULTILINE), name
