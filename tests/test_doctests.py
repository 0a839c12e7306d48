"""Every ``Examples:`` section in the package's docstrings runs, as torch and scikit-learn run theirs.

Each module of ``sgdscape`` is collected with :mod:`doctest`; a module whose examples fail (or whose
output drifted) fails here with doctest's own report. A test also checks that the public front door,
``sgdscape.__all__``, documents its main entry points with examples, so the suite cannot pass by
having no examples at all.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import sgdscape

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    names = ["sgdscape"]
    for info in pkgutil.walk_packages(sgdscape.__path__, prefix="sgdscape."):
        names.append(info.name)
    return sorted(names)


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [test for test in finder.find(module, name) if test.examples]


MODULES = [name for name in _module_names() if name != "sgdscape.__main__"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in _examples(name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name}"


ENTRY_POINTS = ["landscape", "train", "run", "chains", "curvature", "slice_landscape"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_front_door_entry_points_have_examples(name: str) -> None:
    doc = getattr(sgdscape, name).__doc__ or ""
    tests = doctest.DocTestParser().get_examples(doc)
    assert "Examples:" in doc and tests, f"sgdscape.{name} has no runnable Examples: section"
