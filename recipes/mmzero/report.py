"""What an MM-Zero iteration imagined: its renders, programs, Proposer texts, render status and rewards.

`curriculum_audit(task_set, image)` reads a labeled MM-Zero task set (one
row per question, two per render; one dropped row per malformed Proposer text
or failed render) and returns the task set's extra metadata (`Recipe.
task_set_metadata`): counts, mean rewards, a contact sheet of the renders and a
markdown table with one row per Proposer item. The rewards are the published
ones (`recipes.mmzero.rewards`) computed from the task set's own Solver votes,
so a team sees what the Coder and the Proposer would be paid for this curriculum.
"""

from __future__ import annotations

import json

import pandas as pd

from evaluation.plots import contact_sheet, png_markdown
from recipes.core.voting import majority_vote
from recipes.mmzero.rewards import coder_reward, proposer_rewards

MAX_SHEET = 32
MAX_TABLE = 40


def _cell(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|").replace("`", "'")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def audit_items(task_set: pd.DataFrame) -> list[dict]:
    """One dict per Proposer item: texts, program, render status, Solver scores, Coder and Proposer rewards."""
    items: dict[int, dict] = {}
    for _, row in task_set.iterrows():
        meta = json.loads(row["meta"]) if isinstance(row["meta"], str) else dict(row["meta"])
        k = int(meta.get("item", -1))
        it = items.setdefault(k, {"item": k, "image_id": row["image_id"], "reason": row["reason"], "detail": row["detail"],
                                  "caption": meta.get("caption", ""), "content_type": meta.get("content_type", ""),
                                  "proposer_text": meta.get("proposer_text", row["raw"]), "program": meta.get("program", ""),
                                  "render_status": meta.get("render_status", ""), "kept": []})
        it["kept"].append(bool(row["kept"]))
        answers = list(row["answers"]) if row["answers"] is not None else []
        if meta.get("question_kind") == "easy":
            it["easy"], it["easy_answer"] = row["question"], meta["answer"]
            it["solvability"] = sum(a == meta["answer"] for a in answers) / max(1, len(answers))
        elif meta.get("question_kind") == "hard":
            it["hard"], it["hard_answer"] = row["question"], meta["answer"]
            it["c_hard"] = majority_vote(answers)[1]
            it["hard_solved"] = any(a == meta["answer"] for a in answers)
    out = sorted(items.values(), key=lambda d: d["item"])
    for it in out:
        if it["render_status"] == "ok":
            it["coder_reward"] = coder_reward("ok", it.get("solvability", 0.0), it.get("hard_solved", False))
        elif it["render_status"]:
            it["coder_reward"] = coder_reward(it["render_status"])
    batch = [None if not it["render_status"] else {
        "renders": [(it.get("solvability", 0.0), it.get("c_hard", 0.0), int(it.get("hard_solved", False)))]
        if it["render_status"] == "ok" else [],
        "content_type": it["content_type"], "caption": it["caption"],
        "easy": it.get("easy", it["caption"]), "hard": it.get("hard", it["caption"])} for it in out]
    for it, r in zip(out, proposer_rewards(batch)):
        it["proposer_reward"] = r
    return out


def curriculum_audit(task_set: pd.DataFrame, image) -> dict:
    """Numbers and markdown (contact sheet, per-item table) for the task set's asset page; `image(id)` reads a render."""
    items = audit_items(task_set)
    rendered = [it for it in items if it["render_status"] == "ok"]
    coded = [it for it in items if it["render_status"]]
    coder = [it["coder_reward"] for it in coded]
    proposer = [it["proposer_reward"] for it in items]
    out: dict = {
        "proposer_items": len(items),
        "renders_ok": len(rendered),
        "render_rate": len(rendered) / len(coded) if coded else 0.0,
        "mean_coder_reward": sum(coder) / len(coder) if coder else 0.0,
        "mean_proposer_reward": sum(proposer) / len(proposer) if proposer else 0.0,
        "content_types": json.dumps(pd.Series([it["content_type"] for it in coded], dtype=str).value_counts().to_dict()),
    }
    if rendered:
        shown = rendered[:MAX_SHEET]
        sheet = contact_sheet([image(it["image_id"]) for it in shown], [str(it["item"]) for it in shown], cols=8)
        out["renders_contact_sheet"] = png_markdown(sheet, "renders")
    else:
        out["renders_contact_sheet"] = "no program rendered in this iteration"
    lines = ["| item | render | type | caption | easy (answer, solvability) | hard (answer, c, solved) | program | coder reward "
             "| proposer reward | kept |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for it in items[:MAX_TABLE]:
        status = it["render_status"] or "malformed proposal"
        if it["render_status"] and it["render_status"] != "ok":
            status = _cell(it["detail"], 70)  # "render <status>: <reason>"
        easy = f"{_cell(it.get('easy', ''), 50)} ({it.get('easy_answer', '-')}, {it.get('solvability', 0.0):.2f})" if "easy" in it else "-"
        hard = (f"{_cell(it.get('hard', ''), 50)} ({it.get('hard_answer', '-')}, {it.get('c_hard', 0.0):.2f}, "
                f"{'yes' if it.get('hard_solved') else 'no'})") if "hard" in it else "-"
        caption = _cell(it["caption"]) if it["caption"] else f"`{_cell(it['proposer_text'], 60)}` ({_cell(it['detail'], 50)})"
        program = f"`{_cell(it['program'], 80)}`" if it["program"] else "-"
        coder = f"{it['coder_reward']:.2f}" if "coder_reward" in it else "-"
        lines.append(f"| {it['item']} | {status} | {_cell(it['content_type'], 20) or '-'} | {caption} | {easy} | {hard} | {program} | "
                     f"{coder} | {it['proposer_reward']:.2f} | {sum(it['kept'])}/{len(it['kept'])} |")
    if len(items) > MAX_TABLE:
        lines.append(f"\n{len(items) - MAX_TABLE} more items in the task-set parquet (column `meta`).")
    out["curriculum_audit"] = "\n".join(lines)
    return out
