"""The examples in the docstrings of the method modules, the teachers and the data sources run
(CI's `--doctest-modules` covers `sdtheory/core` and `sdtheory/theory` only)."""

import doctest
import importlib
import pkgutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("reasoning_gym")

from sdtheory.lm import methods  # noqa: E402

MODULES = [f"sdtheory.lm.methods.{m.name}" for m in pkgutil.iter_modules(methods.__path__)]
MODULES += ["sdtheory.lm.teachers", "sdtheory.lm.sources"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
