"""Where the tests find the outside validators: Mozilla's ical.js, the Nu HTML checker (vnu.jar)
and axe-core, installed from npm into tools/validators by `.ci/run` (locally:
`npm ci --prefix tools/validators --ignore-scripts`), and the `node` and `java` that run them.

In CI a missing tool fails the test that needs it; elsewhere the test is skipped and says how to
install the tool, so the first test command works on a machine without Node.js or Java."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NODE_MODULES = Path(__file__).resolve().parent.parent / "tools" / "validators" / "node_modules"
INSTALL = "npm ci --prefix tools/validators --ignore-scripts"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; .ci/run installs it")
    pytest.skip(f"{what} is not installed here (install with: {INSTALL})")


def node_module(relative: str) -> Path:
    """A file inside tools/validators/node_modules, e.g. 'ical.js/dist/ical.js'."""
    path = NODE_MODULES / relative
    if not path.exists():
        _missing(f"tools/validators/node_modules/{relative}")
    return path


def program(name: str) -> str:
    """The path of `node` or `java`."""
    found = shutil.which(name)
    if found is None:
        _missing(f"the program {name!r}")
        raise AssertionError  # unreachable: _missing fails or skips
    return found


def vnu_jar() -> Path:
    return node_module("vnu-jar/build/dist/vnu.jar")


def axe_script() -> Path:
    return node_module("axe-core/axe.min.js")


def icaljs() -> Path:
    return node_module("ical.js/dist/ical.js")
