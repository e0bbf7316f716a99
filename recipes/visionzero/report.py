"""Readable views of Vision-Zero game transcripts: markdown per game, a contact sheet, outcome filters.

The task set of a Vision-Zero iteration is a table of played games
(`recipes.visionzero.recipe`); this module renders a few of them for the Dagster UI
(the task_set asset's metadata) and filters games by outcome for a notebook:

    df = pd.read_parquet(store.task_set_path("visionzero", "iter-0001"))
    print(transcript_markdown(games_by_outcome(df, "escaped"), pool.get_image, limit=5))
"""

from __future__ import annotations

import base64
import io
import json

import pandas as pd
from PIL import Image, ImageDraw

from evaluation.plots import png_markdown


def games_by_outcome(df: pd.DataFrame, outcome: str | None = None, kept_only: bool = True) -> pd.DataFrame:
    """Games with this outcome ("caught", "tie", "escaped", "no_votes"; None: all)."""
    out = df[df["kept"]] if kept_only else df[df["reason"] != "no_pair"]
    return out if outcome is None else out[out["outcome"] == outcome]


def _thumb(image, image_id: str, size: int = 48) -> str:
    img = image(image_id).resize((size, size), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return f"![{image_id}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


def transcript_markdown(df: pd.DataFrame, image, limit: int = 3) -> str:
    """The first `limit` played games in full: images, difference, clues in order, votes and every reward."""
    games = df[df["reason"] != "no_pair"].head(limit)
    if games.empty:
        return "no games were played"
    parts = []
    for _, g in games.iterrows():
        n, spy = int(g["n_players"]), int(g["spy"])
        lines = [f"### {g['task_id']}: {g['outcome']} ({g['reason']})",
                 f"civilian {_thumb(image, g['image_id'])} spy {_thumb(image, g['spy_image_id'])}",
                 f"spy: player {spy} of {n}; difference: {g['difference_text']}", "",
                 "| round | player | role | clue | clue reward |", "|---|---|---|---|---|"]
        for c, r in zip(json.loads(g["clues"]), g["clue_rewards"]):
            role = "spy" if c["player"] + 1 == spy else "civilian"
            text = c["text"] if c["ok"] else f"(malformed: {c['reason']})"
            lines.append(f"| {c['round'] + 1} | {c['player'] + 1} | {role} | {text.replace('|', '/')} | {float(r):+.2f} |")
        lines += ["", "| player | vote | vote reward | decision reward |", "|---|---|---|---|"]
        for p, (v, vr, dr) in enumerate(zip(g["answers"], g["vote_rewards"], g["decision_rewards"])):
            lines.append(f"| {p + 1}{' (spy)' if p + 1 == spy else ''} | {v} | {float(vr):+.2f} | {float(dr):+.2f} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def contact_sheet(df: pd.DataFrame, image, limit: int = 8, size: int = 64) -> bytes:
    """PNG: one row per game, civilian image left, spy image right, outcome under it."""
    games = df[df["reason"] != "no_pair"].head(limit)
    sheet = Image.new("RGB", (2 * size + 12, max(1, len(games)) * (size + 14)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for row, (_, g) in enumerate(games.iterrows()):
        y = row * (size + 14)
        sheet.paste(image(g["image_id"]).resize((size, size)), (2, y))
        sheet.paste(image(g["spy_image_id"]).resize((size, size)), (size + 10, y))
        draw.text((2, y + size), f"{g['outcome']} spy={int(g['spy'])}", fill=(0, 0, 0))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def contact_sheet_markdown(df: pd.DataFrame, image, limit: int = 8) -> str:
    return "civilian | spy, per game\n\n" + png_markdown(contact_sheet(df, image, limit), "games contact sheet")
