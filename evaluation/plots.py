"""Small matplotlib plots as PNG bytes, for asset metadata and reports.

Dagster renders markdown metadata, so a PNG embedded as a data URI shows up
inline on the asset's page (`png_markdown`); the same bytes are also written
next to the artifact for anyone reading the files directly.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402


def _to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def png_markdown(png: bytes, alt: str = "plot") -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def loss_curve(losses: Sequence[float], title: str = "training loss", smooth: int = 10) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(range(len(losses)), losses, alpha=0.35, label="per step")
    if len(losses) >= smooth:
        k = smooth
        avg = [sum(losses[i - k + 1 : i + 1]) / k for i in range(k - 1, len(losses))]
        ax.plot(range(k - 1, len(losses)), avg, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return _to_png(fig)


def accuracy_bars(acc: Mapping[str, Mapping], title: str = "held-out accuracy", chance: float | None = 0.25) -> bytes:
    """Bars with 95% intervals from {name: {"accuracy", "ci95", "n"}}."""
    names = list(acc)
    vals = [acc[n]["accuracy"] for n in names]
    err = [[v - acc[n]["ci95"][0] for n, v in zip(names, vals)], [acc[n]["ci95"][1] - v for n, v in zip(names, vals)]]
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(names)), 3))
    ax.bar(names, vals, yerr=err, capsize=3)
    if chance is not None:
        ax.axhline(chance, ls="--", c="grey", lw=1, label="chance")
        ax.legend()
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    return _to_png(fig)


def contact_sheet(images: Sequence[Image.Image], labels: Sequence[str] | None = None, cols: int = 8, cell: int = 64) -> bytes:
    """A grid of thumbnails, optionally captioned, as PNG."""
    from PIL import ImageDraw

    rows = max(1, (len(images) + cols - 1) // cols)
    label_h = 12 if labels else 0
    sheet = Image.new("RGB", (cols * cell, rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, img in enumerate(images):
        x, y = (i % cols) * cell, (i // cols) * (cell + label_h)
        thumb = img.convert("RGB").copy()
        thumb.thumbnail((cell, cell))
        sheet.paste(thumb, (x, y))
        if labels:
            draw.text((x + 1, y + cell), str(labels[i])[:10], fill="black")
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def curves(series: Mapping[str, Sequence[float]], title: str, xlabel: str = "step") -> bytes:
    """Several named series on one axis (reward components, loss), each against its index."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, ys in series.items():
        if len(ys):
            ax.plot(range(1, len(ys) + 1), list(ys), marker="." if len(ys) < 40 else None, label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _to_png(fig)


def consistency_histogram(c_values: Sequence[float], band: tuple[float, float], title: str = "Solver agreement c") -> bytes:
    """Histogram of c with the consistency band shaded: where the frontier tasks are."""
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.axvspan(band[0], band[1], color="tab:green", alpha=0.15, label=f"band [{band[0]}, {band[1]}]")
    ax.hist(list(c_values), bins=[i / 10 + 0.05 for i in range(-1, 11)], rwidth=0.9)
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("c (share of m answers agreeing with the majority)")
    ax.set_ylabel("questions")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _to_png(fig)


def answer_histogram(answers: Mapping[str, Sequence[str | None]], title: str = "answers") -> bytes:
    """Share of each answer (None: no answer) per model, side by side: a collapse onto one answer is one tall bar."""
    labels = sorted({a or "none" for xs in answers.values() for a in xs})
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(labels) * max(1, len(answers))), 3))
    width = 0.8 / max(1, len(answers))
    for k, (name, xs) in enumerate(answers.items()):
        n = max(1, len(xs))
        shares = [sum((a or "none") == lab for a in xs) / n for lab in labels]
        ax.bar([i + k * width for i in range(len(labels))], shares, width=width, label=f"{name} (n={len(xs)})")
    ax.set_xticks([i + width * (len(answers) - 1) / 2 for i in range(len(labels))], labels)
    ax.set_ylabel("share of questions")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _to_png(fig)
