"""A fifth recipe is one folder plus one registration: its assets, job, check and sensor are generated, and it runs.

The recipe below is written into a temporary package (one `__init__.py`), imported (its `@register_recipe`
is the registration) and run for one smoke iteration through Dagster on the session's smoke foundation. Nothing
in zeroforge names it: the core receives the recipe object, the assets are generated from what it declares.
"""

import importlib
import sys
import textwrap

import dagster as dg
import pandas as pd
import pytest

from assets.store import IterationStore
from orchestration.runs import materialization_metadata, partition_set_tags
from recipes import RECIPES

TOY = textwrap.dedent('''
    """Toy: an Asker rewarded only for writing a well-formed question; the Solver learns from the majority."""

    from dataclasses import dataclass

    from models.generation import build_messages
    from recipes.core.config import LoopConfig, hfield
    from recipes.core.keep import KeepRule
    from recipes.core.questioner import QUESTIONER_PROMPT, ask, question_tasks, questioner_examples, try_parse
    from recipes.core.recipe import Recipe
    from recipes.core.registry import register_recipe
    from recipes.core.rewards import completion_text
    from recipes.core.types import RoleTraining


    @dataclass
    class ToyConfig(LoopConfig):
        """The toy's one knob of its own."""

        keep_floor: float = hfield(0.0, "Keep tasks whose c is at least this.")


    def well_formed(completions, **_):
        return [1.0 if try_parse(completion_text(c)) else -1.0 for c in completions]


    @register_recipe("toyrecipe")
    class Toy(Recipe):
        roles = ("asker", "solver")
        config_class = ToyConfig
        drop_reasons = ("too_easy_for_toys",)
        profiles = {"smoke": {
            "m": 3, "images_per_iteration": 6, "task_maker_images": 2, "eval_images": 4, "task_max_new_tokens": 96,
            "engine_batch_size": 16, "task_temperature": 0.0,
            "solver": {"num_generations": 2, "steps": 1, "prompts_per_step": 2, "learning_rate": 1e-4,
                       "max_completion_length": 8, "save_steps": 1},
            "task_makers": {"asker": {"num_generations": 2, "steps": 1, "prompts_per_step": 2, "learning_rate": 1e-4,
                                      "temperature": 0.3, "max_completion_length": 96, "save_steps": 1}},
        }}

        def keep_rule(self, cfg):
            return KeepRule.band(cfg.keep_floor, 1.0)

        def warm_start_formats(self):
            return {"questioner": questioner_examples}

        def role_training(self, role, ctx):
            ids = ctx.sample_image_ids(ctx.config.task_maker_images, "asker-train")
            rows = [{"prompt": build_messages(QUESTIONER_PROMPT, 1), "image": ctx.image(i)} for i in ids]
            return RoleTraining(rows=rows, reward_funcs=[well_formed], reward_weights=[1.0])

        def propose_tasks(self, ctx, makers):
            ids = ctx.sample_image_ids(ctx.config.images_per_iteration, "tasks")
            texts = ask(makers["asker"], [ctx.image(i) for i in ids], 0.0, ctx.config.task_max_new_tokens, ctx.config.seed)
            return question_tasks(ids, texts)
''')


@pytest.fixture
def toy_recipe(tmp_path, monkeypatch):
    (tmp_path / "toyrecipe").mkdir()
    (tmp_path / "toyrecipe" / "__init__.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toyrecipe")
    yield module
    RECIPES.pop("toyrecipe", None)
    sys.modules.pop("toyrecipe", None)


def test_a_fifth_recipe_is_one_folder_and_one_registration(toy_recipe, smoke_home_factory):
    from orchestration.definitions import build_definitions

    assert "toyrecipe" in RECIPES
    defs = build_definitions()
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f"toyrecipe/{a}" for a in ("iteration_config", "asker_checkpoint", "task_set", "solver_checkpoint",
                                       "benchmark_scores", "curriculum_lineage", "leaderboard")} <= keys
    job = defs.resolve_job_def("toyrecipe_iteration")
    assert defs.resolve_sensor_def("toyrecipe_chain_iterations").job_name == "toyrecipe_iteration"

    home, instance = smoke_home_factory("toy")
    instance.add_dynamic_partitions("toyrecipe_iterations", ["iter-0001"])
    op = defs.resolve_assets_def(dg.AssetKey(["toyrecipe", "iteration_config"])).node_def.name
    run = job.execute_in_process(instance=instance, partition_key="iter-0001", raise_on_error=False,
                                 run_config={"ops": {op: {"config": {"profile": "smoke", "keep_floor": 0.2}}}},
                                 tags=partition_set_tags("toyrecipe", "iter-0001"))
    assert run.success, [e.step_failure_data.error for e in run.get_step_failure_events()]
    md = materialization_metadata(run)
    assert md["toyrecipe/iteration_config"]["overrides"] == {"keep_floor": 0.2}  # its own typed knob, in the launchpad
    assert md["toyrecipe/task_set"]["generated"] == 6 and "too_easy_for_toys" in md["toyrecipe/task_set"]  # its declared reason
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["task_set_is_valid"] is True
    df = pd.read_parquet(IterationStore(home).task_set_path("toyrecipe", "iter-0001"))
    assert (df[df["kept"]]["c"] >= 0.2).all()  # its keep rule, applied by the core loop
