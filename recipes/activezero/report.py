"""The curriculum an Active-Zero iteration used: what the Searcher looked for, what it got, and the rewards.

`curriculum_metadata(df, image, searched)` turns a labeled task set into the
task set's extra metadata (`Recipe.task_set_metadata`): a table of queries,
retrieved images, ranks, similarities, c and the Searcher reward, plus a
contact sheet of the images (retrieved by the Searcher, or drawn uniformly in
the passive control). Dagster-free: strings are markdown, numbers are numbers.
"""

from __future__ import annotations

import json

import pandas as pd

from evaluation.plots import contact_sheet, png_markdown
from recipes.activezero.rewards import searcher_reward
from recipes.core.rewards import MALFORMED


def curriculum_rows(df: pd.DataFrame) -> list[dict]:
    """One row per image the iteration used: query, type, image, rank, similarity, c, kept, and the Searcher reward."""
    rows = []
    for _, r in df.iterrows():
        meta = json.loads(r["meta"]) if isinstance(r["meta"], str) and r["meta"] else {}
        searched = "query" in meta
        c = float(r["c"]) if r["majority"] is not None and r["reason"] != "malformed" else None
        row = {"task_id": r["task_id"], "image_id": r["image_id"], "query_type": meta.get("query_type", ""),
               "query": meta.get("query", ""), "rank": meta.get("rank", -1), "similarity": meta.get("similarity", 0.0),
               "c": c, "reason": r["reason"], "kept": bool(r["kept"])}
        if searched:
            row["searcher_reward"] = searcher_reward(c, meta["searcher_format"], meta["image_cluster_share"], meta["query_cluster_share"])
        elif str(r.get("detail", "")).startswith("searcher:"):
            row["searcher_reward"] = MALFORMED
        rows.append(row)
    return rows


def curriculum_metadata(df: pd.DataFrame, image, searched: bool, max_rows: int = 40, max_images: int = 32) -> dict:
    """Markdown table + contact sheet; `image(id)` reads a pool image."""
    table = pd.DataFrame(curriculum_rows(df))
    out: dict = {}
    with_image = table[table["image_id"] != ""] if len(table) else table
    if searched and len(table):
        cols = ["query_type", "query", "image_id", "rank", "similarity", "c", "searcher_reward", "reason"]
        out["searcher_queries"] = table[cols].head(max_rows).to_markdown(index=False, floatfmt=".3f")
        rewards = table["searcher_reward"].dropna() if "searcher_reward" in table else []
        out["searcher_reward_mean"] = float(rewards.mean()) if len(rewards) else 0.0
        out["searcher_malformed"] = int((table["image_id"] == "").sum())
        out["distinct_queries"] = int(table[table["query"] != ""]["query"].nunique())
    out["distinct_images"] = int(with_image["image_id"].nunique()) if len(with_image) else 0
    if len(with_image):
        shown = with_image.drop_duplicates("image_id").head(max_images)
        labels = [(q or i)[:18] for q, i in zip(shown["query"], shown["image_id"])]
        sheet = contact_sheet([image(i) for i in shown["image_id"]], labels=labels, cols=8)
        out["retrieved_images" if searched else "drawn_images"] = png_markdown(sheet, "images of this iteration")
    return out
