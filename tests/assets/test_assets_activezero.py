"""One Active-Zero iteration on the tiny smoke base, in-process through Dagster: Searcher -> Questioner -> Solver -> scores.

The smoke foundation (tiny warm-started base, 50-image pool, a 20-step embedder) comes from
tests/assets/conftest.py; the iteration uses the recipe's "smoke" profile. It checks the plumbing and the
curriculum a team inspects (queries, retrieved images, rewards), not model quality.
"""

import json

import pandas as pd

from assets.store import IterationStore

SMOKE = {"profile": "smoke"}


def test_one_activezero_iteration_records_its_curriculum(smoke_home_factory):
    from orchestration.runs import materialization_metadata, run_iteration
    from retrieval.pool import ImagePool

    home, instance = smoke_home_factory("activezero")
    pool = ImagePool(home / "pool")
    emb = pool.load_embedder()  # the foundation job trained and recorded it
    hits = pool.search_text(emb, pool.records()["caption"].iloc[0], k=5)
    assert len(hits) == 5 and hits[0][1] >= hits[-1][1]

    result = run_iteration(instance, "activezero", 1, SMOKE)
    assert result.success, [e.step_failure_data.error for e in result.get_step_failure_events()]
    md = materialization_metadata(result)
    assert {"activezero/searcher_checkpoint", "activezero/questioner_checkpoint", "activezero/task_set",
            "activezero/solver_checkpoint", "activezero/benchmark_scores"} <= set(md)
    # the Searcher trained with its reward; the Questioner then trained on images that Searcher fetched
    assert md["activezero/searcher_checkpoint"]["searcher_completions"] > 0
    assert md["activezero/questioner_checkpoint"]["questioner_completions"] > 0

    store = IterationStore(home)
    df = pd.read_parquet(store.task_set_path("activezero", "iter-0001"))
    assert len(df) == 8  # images_per_iteration queries, each one a row (kept or dropped with its reason)
    searched = df[df["meta"].map(lambda m: "query" in json.loads(m))]
    malformed_search = df[df["detail"].str.startswith("searcher:")]
    # every query is one row: searched (then asked, or dropped as a malformed question, query kept), or malformed
    assert len(searched) + len(malformed_search) == len(df)
    assert (malformed_search["image_id"] == "").all()
    for m in searched["meta"].map(json.loads):
        assert 0 <= m["rank"] < 5 and m["query"] and 0 < m["image_cluster_share"] <= 1 and 0 < m["query_cluster_share"] <= 1

    ts = md["activezero/task_set"]
    assert "query_type" in ts["searcher_queries"] and "searcher_reward" in ts["searcher_queries"]
    assert ts["retrieved_images"].startswith("![") and ts["distinct_queries"] >= 1
    assert ts["distinct_images"] == df[df["image_id"] != ""]["image_id"].nunique()
    assert ts["searcher_malformed"] == len(malformed_search)

    card = json.loads((store.role_dir("activezero", "iter-0001", "solver") / "zeroforge_train.json").read_text())
    hp = card["hyperparams"]
    assert (hp["epsilon_high"], hp["loss_type"], hp["drop_zero_std_groups"]) == (0.28, "dapo", True)
    history = json.loads((store.role_dir("activezero", "iter-0001", "solver") / "log_history.json").read_text())
    dropped = [h["frac_groups_dropped"] for h in history if "frac_groups_dropped" in h]
    zero_std = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
    assert dropped and dropped == zero_std  # exactly the zero-variance groups are dropped from the loss
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["task_set_is_valid"] is True
