"""Every docstring example in the libraries runs: reward tables, voting, keep rules, diversity, formats, intervals.

Modules are found by looking for `>>>` in the source, so an example added anywhere is run without
registering it here; a module whose examples fail, or a package that loses all of them, fails this test.
"""

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "retrieval", "evaluation", "recipes")


def _modules_with_examples() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if ">>>" in path.read_text():
                out.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return out


MODULES = _modules_with_examples()


def test_the_reward_and_voting_examples_are_found():
    assert {"recipes.core.voting", "recipes.core.rewards", "recipes.core.keep", "recipes.core.diversity",
            "recipes.vzero.rewards", "recipes.mmzero.rewards", "recipes.visionzero.game", "recipes.activezero.rewards"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
