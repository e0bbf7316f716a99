"""`evaluate_model`: one call from a model (or engine) and benchmark paths to an auditable report.

The entry point `zeroforge eval` and the Dagster `benchmark_scores` asset
both call. For each benchmark it reads the samples (`evaluation.benchmarks`),
asks every question greedily through one batched `InferenceEngine`, reads
the replies with the benchmark's published rule (`evaluation.scorers`) and
writes the per-sample predictions (id, prompt, reply, extracted, answer,
correct) to parquet, so anyone can recompute a score. Every score travels
with its sample count and a 95% interval.

    report = evaluate_model("/models/Qwen2.5-VL-3B-Instruct",
                            {"MathVista": "/data/vlmeval", "procedural": None}, "out/eval")
    report["procedural"].score, report["procedural"].ci95, report.to_dict()
    compare({"base": base_report, "iter3": report})   # leaderboard DataFrame
    regressed(base_report["MMStar"], report["MMStar"])

Benchmark files are all resolved and read before the model is loaded, so a
missing file fails in seconds, not after an hour of generation.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evaluation.answers import Judge
from evaluation.benchmarks import BenchmarkSpec, load_benchmark
from evaluation.readers import BenchSample
from evaluation.scorers import Aggregate, Judgement
from evaluation.stats import Score

REPORT_FILE = "report.json"
PREDICTIONS_DIR = "predictions"
RATIO_METRICS = ("accuracy", "relaxed_accuracy", "f1", "aAcc")  # printed as percentages


@dataclass
class BenchmarkResult:
    """One benchmark's outcome: headline score with n and 95% CI, sub-scores, prompt, predictions file."""

    name: str
    metric: str
    score: float
    n: int
    ci95: tuple[float, float]
    sub_scores: dict[str, dict]
    prompt: str
    predictions_path: str
    source: str
    max_new_tokens: int
    seconds: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = [round(self.ci95[0], 4), round(self.ci95[1], 4)]
        d["score"] = round(self.score, 4)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "BenchmarkResult":
        d = dict(d)
        d["ci95"] = tuple(d["ci95"])
        return cls(**d)

    def formatted(self) -> tuple[str, str]:
        """(score, '[lo, hi]') as printed: percentages for ratios, points for MME."""
        if self.metric in RATIO_METRICS:
            return f"{100 * self.score:.1f}%", f"[{100 * self.ci95[0]:.1f}, {100 * self.ci95[1]:.1f}]"
        return f"{self.score:.1f}", f"[{self.ci95[0]:.1f}, {self.ci95[1]:.1f}]"


@dataclass
class EvalReport:
    """Results per benchmark plus how they were produced (model, engine, decoding settings)."""

    model: str
    results: dict[str, BenchmarkResult]
    settings: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def __getitem__(self, name: str) -> BenchmarkResult:
        if name not in self.results:
            raise KeyError(f"no result for benchmark {name!r}; this report has {sorted(self.results)}")
        return self.results[name]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "created": self.created,
            "settings": self.settings,
            "results": {k: v.to_dict() for k, v in self.results.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "EvalReport":
        results = {k: BenchmarkResult.from_dict(v) for k, v in d["results"].items()}
        return cls(d.get("model", "?"), results, dict(d.get("settings", {})), d.get("created", ""))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "EvalReport":
        path = Path(path)
        if path.is_dir():
            path = path / REPORT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"expected an evaluation report at {path}, found nothing")
        return cls.from_dict(json.loads(path.read_text()))

    def table(self) -> str:
        """Plain-text table: benchmark, metric, score, 95% CI, n."""
        rows = [("benchmark", "metric", "score", "95% CI", "n")]
        for r in self.results.values():
            rows.append((r.name, r.metric, *r.formatted(), str(r.n)))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


# ---------------------------------------------------------------- generation


def _cost(s: BenchSample, prompt: str) -> tuple[int, int]:
    pixels = sum(img.size[0] * img.size[1] for img in s.images)
    return (pixels, len(prompt))


# Requests go to the engine in chunks of about this many, so that a benchmark's
# decoded pixels can be released chunk by chunk (POPE: 9,000 COCO images would
# otherwise hold ~8 GB) and progress is visible on long runs.
CHUNK_REQUESTS = 512


def generate_replies(
    engine, samples: Sequence[BenchSample], prompts: Sequence[str], max_new_tokens: int, release_images: bool = False
) -> list[str]:
    """Greedy replies in sample order.

    Requests are sorted by image area and prompt length first, so each batch
    pads to similar sizes (the returned order is the samples' order).
    `release_images`: close each image after its last use, freeing its pixels;
    only for callers that own the samples (the images are unusable afterwards).
    """
    from models.generation import GenerationRequest, SamplingParams

    order = sorted(range(len(samples)), key=lambda i: _cost(samples[i], prompts[i]))
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    bs = max(int(getattr(engine, "batch_size", 1) or 1), 1)
    chunk = max(CHUNK_REQUESTS // bs, 1) * bs
    last_use = {id(img): pos // chunk for pos, i in enumerate(order) for img in samples[i].images}
    replies = [""] * len(samples)
    for c, start in enumerate(range(0, len(order), chunk)):
        part = order[start : start + chunk]
        outs = engine.generate([GenerationRequest(prompts[i], list(samples[i].images)) for i in part], params)
        if len(outs) != len(part):
            raise RuntimeError(f"engine {getattr(engine, 'name', engine)!r} returned {len(outs)} results for {len(part)} requests")
        for i, out in zip(part, outs):
            replies[i] = out[0] if out else ""
        if release_images:
            for i in part:
                for img in samples[i].images:
                    if last_use.get(id(img)) == c:
                        img.close()
    return replies


def prediction_rows(name: str, samples, prompts, replies, judgements: Sequence[Judgement]) -> list[dict]:
    rows = []
    for s, p, r, j in zip(samples, prompts, replies, judgements):
        group = next((str(s.meta[k]) for k in ("task_type", "split", "category") if s.meta.get(k) not in (None, "")), "")
        rows.append(
            {
                "benchmark": name,
                "id": s.id,
                "prompt": p,
                "reply": r,
                "extracted": j.extracted,
                "answer": s.answer,
                "correct": bool(j.correct),
                "group": group,
                "n_images": len(s.images),
                "meta": json.dumps(s.meta, default=str, ensure_ascii=False),
            }
        )
    return rows


def write_predictions(rows: list[dict], path: Path) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=["benchmark", "id", "prompt", "reply", "extracted", "answer", "correct", "group", "n_images", "meta"])
    df["extracted"] = df["extracted"].astype("string")  # None stays null, others are text
    df.to_parquet(path, index=False)
    return path


def evaluate_samples(
    engine,
    spec: BenchmarkSpec,
    samples: Sequence[BenchSample],
    out_dir: str | Path,
    source: str = "",
    max_new_tokens: int | None = None,
    judge: Judge | None = None,
    seed: int = 0,
    release_images: bool = False,
) -> BenchmarkResult:
    """Ask, score and record one benchmark's samples with an already-built engine.

    `release_images` frees each image's pixels after its last use (see
    `generate_replies`); `evaluate_model` sets it, since it owns its samples.
    """
    t0 = time.monotonic()
    scorer = spec.scorer
    tokens = max_new_tokens or scorer.max_new_tokens
    prompts = [scorer.prompt(s) for s in samples]
    replies = generate_replies(engine, samples, prompts, tokens, release_images)
    judgements = [scorer.judge_reply(s, r, judge) for s, r in zip(samples, replies)]
    agg: Aggregate = scorer.aggregate(samples, judgements, seed)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.name)
    path = write_predictions(prediction_rows(spec.name, samples, prompts, replies, judgements), Path(out_dir) / PREDICTIONS_DIR / f"{safe}.parquet")
    return BenchmarkResult(
        name=spec.name,
        metric=agg.metric,
        score=agg.main.value,
        n=agg.main.n,
        ci95=agg.main.ci95,
        sub_scores=agg.sub_scores,
        prompt=scorer.prompt_template,
        predictions_path=str(path),
        source=source,
        max_new_tokens=tokens,
        seconds=round(time.monotonic() - t0, 3),
    )


def _engine_for(model_dir_or_engine, batch_size: int, device: str | None, progress: bool):
    if hasattr(model_dir_or_engine, "generate") and not isinstance(model_dir_or_engine, (str, Path)):
        return model_dir_or_engine, getattr(model_dir_or_engine, "name", type(model_dir_or_engine).__name__)
    from models.generation import TransformersEngine
    from models.loading import load_vlm

    model, processor = load_vlm(model_dir_or_engine, device=device)
    return TransformersEngine(model, processor, batch_size=batch_size, progress=progress), str(model_dir_or_engine)


def evaluate_model(
    model_dir_or_engine,
    benchmarks: Mapping[str, str | Path | None],
    out_dir: str | Path,
    batch_size: int = 16,
    limit: int | None = None,
    *,
    device: str | None = None,
    max_new_tokens: int | None = None,
    judge: Judge | None = None,
    seed: int = 0,
    progress: bool = False,
) -> EvalReport:
    """Score a model on benchmarks {name: path or None} and write predictions + report.json into `out_dir`.

    `model_dir_or_engine`: a local HF VLM directory (loaded with
    `models.loading.load_vlm`, batched by `batch_size`) or any
    `InferenceEngine` (used as is). `limit`: the first N samples of each
    benchmark. `judge`: optional answer-extraction plug-in (off by default).
    `seed`: seeds the bootstrap intervals.
    """
    if not benchmarks:
        raise ValueError("expected at least one benchmark, e.g. {'procedural': None}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, found {batch_size}")
    if isinstance(model_dir_or_engine, (str, Path)):
        from models.loading import check_model_dir

        check_model_dir(model_dir_or_engine)  # a wrong path fails before any benchmark is read
    loaded = [load_benchmark(name, path, limit) for name, path in benchmarks.items()]
    names = [spec.name for spec, _, _ in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"each benchmark may appear once, found {names}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # only once every benchmark was found
    engine, model_label = _engine_for(model_dir_or_engine, batch_size, device, progress)
    t0 = time.monotonic()
    results = {
        spec.name: evaluate_samples(engine, spec, samples, out, source, max_new_tokens, judge, seed, release_images=True)
        for spec, source, samples in loaded
    }
    report = EvalReport(
        model=model_label,
        results=results,
        settings={
            "engine": getattr(engine, "name", type(engine).__name__),
            "batch_size": getattr(engine, "batch_size", batch_size),
            "decoding": "greedy (temperature 0, n=1)",
            "limit": limit,
            "max_new_tokens": max_new_tokens,
            "judge": getattr(judge, "__name__", repr(judge)) if judge else None,
            "bootstrap_seed": seed,
            "seconds": round(time.monotonic() - t0, 2),
        },
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    report.save(out / REPORT_FILE)
    return report


# ---------------------------------------------------------------- comparing reports


def _as_report(r) -> EvalReport:
    if isinstance(r, EvalReport):
        return r
    if isinstance(r, Mapping):
        return EvalReport.from_dict(r)
    return EvalReport.load(r)


def compare(reports_by_label: Mapping[str, Any]):
    """Leaderboard: one row per benchmark, columns (label, score | ci_low | ci_high | n | regressed).

    Reports may be `EvalReport`s, their `.to_dict()`, or paths to report.json
    (or its folder). The first label is the baseline: every later label gets
    a `regressed` column (see `regressed`). A benchmark a report lacks is NaN.
    """
    import pandas as pd

    if not reports_by_label:
        raise ValueError("compare needs at least one report")
    reports = {label: _as_report(r) for label, r in reports_by_label.items()}
    benches = list(dict.fromkeys(b for r in reports.values() for b in r.results))
    labels = list(reports)
    base = reports[labels[0]]
    data: dict[tuple[str, str], list] = {}
    for i, label in enumerate(labels):
        res = reports[label].results
        data[(label, "score")] = [res[b].score if b in res else math.nan for b in benches]
        data[(label, "ci_low")] = [res[b].ci95[0] if b in res else math.nan for b in benches]
        data[(label, "ci_high")] = [res[b].ci95[1] if b in res else math.nan for b in benches]
        data[(label, "n")] = [res[b].n if b in res else pd.NA for b in benches]
        if i > 0:
            data[(label, "regressed")] = [
                regressed(base.results[b], res[b]) if b in res and b in base.results else pd.NA for b in benches
            ]
    df = pd.DataFrame(data, index=pd.Index(benches, name="benchmark"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["label", "field"])
    return df


def _score_ci(x) -> tuple[float, tuple[float, float]]:
    if isinstance(x, (BenchmarkResult, Score)):
        value = x.score if isinstance(x, BenchmarkResult) else x.value
        return float(value), (float(x.ci95[0]), float(x.ci95[1]))
    if isinstance(x, Mapping):
        value = x.get("score", x.get("accuracy"))
        if value is None or "ci95" not in x:
            raise ValueError(f"expected a dict with 'score' (or 'accuracy') and 'ci95', found keys {sorted(x)}")
        return float(value), (float(x["ci95"][0]), float(x["ci95"][1]))
    if isinstance(x, Sequence) and len(x) == 2:
        return float(x[0]), (float(x[1][0]), float(x[1][1]))
    raise TypeError(f"expected a BenchmarkResult, Score, {{'score', 'ci95'}} dict or (score, (lo, hi)), found {type(x).__name__}")


def regressed(prev, cur) -> bool:
    """True when `cur` dropped below `prev` by more than the two intervals allow.

    Each argument is a score with its 95% interval (BenchmarkResult, Score,
    {'score', 'ci95'} dict or (score, (lo, hi))). The drop must exceed
    sqrt(a^2 + b^2), where a is prev's lower half-width and b cur's upper
    half-width: the usual 95% test for a difference of two independent
    estimates, less jumpy than "below prev's interval" and less blind than
    "intervals do not overlap".
    """
    p, (p_lo, _) = _score_ci(prev)
    c, (_, c_hi) = _score_ci(cur)
    drop = p - c
    margin = math.hypot(max(p - p_lo, 0.0), max(c_hi - c, 0.0))
    return drop > margin
