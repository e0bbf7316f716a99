"""The base's address follows what it holds: configuration, and the code that makes its data and training."""

from pathlib import Path

import recipes.core.bootstrap as bootstrap
from recipes.core.bootstrap import BaseModelBuild, source_digest


def test_the_address_changes_with_the_source_behind_the_data(tmp_path, monkeypatch):
    build = BaseModelBuild(recipes=("vzero",))
    assert build.fingerprint() == BaseModelBuild(recipes=("vzero",)).fingerprint()  # stable
    assert BaseModelBuild(recipes=("vzero",), seed=1).fingerprint() != build.fingerprint()
    # a module of the world edited (here: a stand-in package in its place): a new address, same config
    pkg = tmp_path / "fakeworld"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tasks.py").write_text("OPTIONS = 'nearest'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bootstrap, "_SOURCE_MODULES", (*bootstrap._SOURCE_MODULES, "fakeworld"))
    before = build.fingerprint()
    (pkg / "tasks.py").write_text("OPTIONS = 'window'\n")
    assert build.fingerprint() != before


def test_the_digest_covers_every_taught_recipe_s_format_builders():
    import inspect

    from recipes.core.registry import get_recipe

    builder = next(iter(get_recipe("mmzero").warm_start_formats().values()))
    assert Path(inspect.getsourcefile(builder)).name == "formats.py"
    assert source_digest(["mmzero"]) != source_digest(["vzero"])


def test_the_address_changes_with_the_torch_thread_count():
    """One and two threads give different weights after enough steps, so they get different addresses."""
    import torch

    build, threads = BaseModelBuild(recipes=("vzero",)), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = build.fingerprint()
        torch.set_num_threads(2)
        assert build.fingerprint() != one
        torch.set_num_threads(1)
        assert build.fingerprint() == one
    finally:
        torch.set_num_threads(threads)


def test_the_base_card_scores_each_form_on_the_harness_questions():
    """The card's yes/no and open held-out questions are the ones `procedural_yesno` / `procedural_open` ask,
    so the base's card and the leaderboard report the same figure for each form."""
    from evaluation.procedural import procedural_samples
    from recipes.core.bootstrap import bootstrap_datasets

    _, held_out = bootstrap_datasets(4, 20, 0, [], task_mix="all")
    for kind in ("yesno", "open"):
        card = [(e.prompt.splitlines()[0], e.answer) for e in held_out if e.answer_kind == kind]
        harness = [(s.question, s.answer) for s in procedural_samples(20, kind=kind)]
        assert card and card == harness
