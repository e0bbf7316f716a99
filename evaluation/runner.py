"""`evaluate_model`: one call from a model (or engine) and benchmark paths to an auditable report.

The entry point `zeroforge eval` and the Dagster `benchmark_scores` asset
both call. For each benchmark it reads the samples (`evaluation.benchmarks`),
asks every question greedily through one batched `InferenceEngine`, reads
the replies with the benchmark's published rule (`evaluation.scorers`, or
`evaluation.custom` for custom sets) and writes the per-sample predictions
(id, prompt, reply, extracted, answer, correct, extracted_from, rule) to
parquet, so anyone can recompute a score. Every score travels with its
sample count and a 95% interval; the report classes live in
`evaluation.report` and are importable from here too.

    report = evaluate_model("/models/Qwen2.5-VL-3B-Instruct",
                            {"MathVista": "/data/vlmeval", "procedural": None}, "out/eval",
                            progress=True, on_bad_image="skip")
    report["procedural"].score, report["procedural"].ci95, report.to_dict()
    print(report.text_table())                        # headline + per-category tables
    compare({"base": base_report, "iter3": report})   # leaderboard DataFrame

Benchmark files are all resolved and read, every image decoded, before the
model is loaded, so a missing file or a truncated picture fails in seconds,
not after an hour of generation. With `progress=True` each benchmark shows a
bar (samples done, samples/s, time left) on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from evaluation.answers import Judge
from evaluation.benchmarks import BenchmarkSpec, find_spec, open_benchmark
from evaluation.readers import BenchSample
from evaluation.report import (  # noqa: F401  (re-exported: callers import the report classes from here)
    RATIO_METRICS,
    REPORT_FILE,
    SKIPPED_ROWS_KEPT,
    BenchmarkResult,
    EvalReport,
    compare,
    paired_change,
    regressed,
    regression_verdict,
)
from evaluation.scorers import Aggregate, Judgement, Scorer

PREDICTIONS_DIR = "predictions"
PREDICTION_COLUMNS = [
    "benchmark", "id", "prompt", "reply", "extracted", "answer", "correct",
    "extracted_from", "rule", "group", "n_images", "meta",
]  # fmt: skip


# ---------------------------------------------------------------- generation


def _cost(s: BenchSample, prompt: str) -> tuple[int, int]:
    pixels = sum(img.size[0] * img.size[1] for img in s.images)
    return (pixels, len(prompt))


# Requests go to the engine in chunks of about this many, so that a benchmark's
# decoded pixels can be released chunk by chunk (POPE: 9,000 COCO images would
# otherwise hold ~8 GB) and progress is visible on long runs.
CHUNK_REQUESTS = 512


def generate_replies(
    engine,
    samples: Sequence[BenchSample],
    prompts: Sequence[str],
    max_new_tokens: int,
    release_images: bool = False,
    bar=None,
) -> list[str]:
    """Greedy replies in sample order.

    Requests are sorted by image area and prompt length first, so each batch
    pads to similar sizes (the returned order is the samples' order).
    `release_images`: close each image after its last use, freeing its pixels;
    only for callers that own the samples (the images are unusable afterwards).
    `bar`: a progress bar (anything with `update(n)`), advanced as replies come.
    """
    from models.generation import GenerationRequest, SamplingParams

    order = sorted(range(len(samples)), key=lambda i: _cost(samples[i], prompts[i]))
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    bs = max(int(getattr(engine, "batch_size", 1) or 1), 1)
    chunk = max(CHUNK_REQUESTS // bs, 1) * bs
    # A bar moves once per engine call: with one, an engine that batches
    # (batch_size) is called batch by batch, which it would do inside anyway;
    # one without (vLLM schedules its own batches) keeps whole chunks.
    step = bs if bar is not None and hasattr(engine, "batch_size") else chunk
    last_use = {id(img): pos // chunk for pos, i in enumerate(order) for img in samples[i].images}
    replies = [""] * len(samples)
    for c, start in enumerate(range(0, len(order), chunk)):
        part = order[start : start + chunk]
        for sub_start in range(0, len(part), step):
            sub = part[sub_start : sub_start + step]
            outs = engine.generate([GenerationRequest(prompts[i], list(samples[i].images)) for i in sub], params)
            if len(outs) != len(sub):
                raise RuntimeError(f"engine {getattr(engine, 'name', engine)!r} returned {len(outs)} results for {len(sub)} requests")
            for i, out in zip(sub, outs):
                replies[i] = out[0] if out else ""
            if bar is not None:
                bar.update(len(sub))
        if release_images:
            for i in part:
                for img in samples[i].images:
                    if last_use.get(id(img)) == c:
                        img.close()
    return replies


def prediction_rows(name: str, samples, prompts, replies, judgements: Sequence[Judgement], scorer: Scorer | None = None) -> list[dict]:
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
                "extracted_from": j.extracted_from,
                "rule": scorer.rule_of(s) if scorer is not None else "",
                "group": group,
                "n_images": len(s.images),
                "meta": json.dumps(s.meta, default=str, ensure_ascii=False),
            }
        )
    return rows


def write_predictions(rows: list[dict], path: Path) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=PREDICTION_COLUMNS)
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
    *,
    progress: bool = False,
    skipped: Sequence[str] = (),
) -> BenchmarkResult:
    """Ask, score and record one benchmark's samples with an already-built engine.

    `release_images` frees each image's pixels after its last use (see
    `generate_replies`); `evaluate_model` sets it, since it owns its samples.
    `progress`: a bar on stderr. `skipped`: the rows the reader left out, kept
    in the result (count and the first `SKIPPED_ROWS_KEPT`).
    """
    t0 = time.monotonic()
    scorer = spec.scorer
    tokens = max_new_tokens or scorer.max_new_tokens
    prompts = [scorer.prompt(s) for s in samples]
    with _bar(spec.name, len(samples), progress) as bar:
        replies = generate_replies(engine, samples, prompts, tokens, release_images, bar if progress else None)
    judgements = [scorer.judge_reply(s, r, judge) for s, r in zip(samples, replies)]
    agg: Aggregate = scorer.aggregate(samples, judgements, seed)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.name)
    rows = prediction_rows(spec.name, samples, prompts, replies, judgements, scorer)
    path = write_predictions(rows, Path(out_dir) / PREDICTIONS_DIR / f"{safe}.parquet")
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
        skipped=len(skipped),
        skipped_rows=list(skipped[:SKIPPED_ROWS_KEPT]),
    )


def _bar(name: str, total: int, enabled: bool):
    """A tqdm bar for one benchmark: samples done of total, samples/s, time left."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=name, unit=" samples", disable=not enabled, file=sys.stderr, dynamic_ncols=True,
        bar_format="{desc}: {n_fmt}/{total_fmt} samples |{bar}| {rate_fmt}, elapsed {elapsed}, ETA {remaining}",
    )


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)


def _engine_for(model_dir_or_engine, batch_size: int, device: str | None, progress: bool):
    if hasattr(model_dir_or_engine, "generate") and not isinstance(model_dir_or_engine, (str, Path)):
        return model_dir_or_engine, getattr(model_dir_or_engine, "name", type(model_dir_or_engine).__name__)
    from models.generation import TransformersEngine
    from models.loading import load_vlm

    model, processor = load_vlm(model_dir_or_engine, device=device)
    # The engine's own per-call bar stays off: evaluate_model shows one bar per benchmark.
    return TransformersEngine(model, processor, batch_size=batch_size, progress=False), str(model_dir_or_engine)


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
    on_bad_image: str = "error",
    rules: Mapping[str, str] | None = None,
) -> EvalReport:
    """Score a model on benchmarks {name: path or None} and write predictions + report.json into `out_dir`.

    `model_dir_or_engine`: a local HF VLM directory (loaded with
    `models.loading.load_vlm`, batched by `batch_size`) or any
    `InferenceEngine` (used as is). `limit`: the first N samples of each
    benchmark. `judge`: optional answer-extraction plug-in (off by default).
    `seed`: seeds the bootstrap intervals. `progress`: say on stderr what is
    read and loaded, and show a bar per benchmark. `on_bad_image`: "error"
    (stop, before the model is loaded, at a row whose image is missing or
    does not decode) or "skip" (leave such rows out; counted and listed in
    the result, report.json and, with `progress`, on stderr). `rules`:
    {custom set name: rule} for its questions without options (see
    `evaluation.custom.RULES_HELP`).
    """
    if not benchmarks:
        raise ValueError("expected at least one benchmark, e.g. {'procedural': None}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, found {batch_size}")
    rule_of = _rules_by_benchmark(rules or {}, benchmarks)
    if isinstance(model_dir_or_engine, (str, Path)):
        from models.loading import check_model_dir

        check_model_dir(model_dir_or_engine)  # a wrong path fails before any benchmark is read
    loaded = []
    for name, path in benchmarks.items():
        _say(progress, f"reading {name} from {path} (decoding every image) ..." if path else f"preparing {name} ...")
        b = open_benchmark(name, path, limit, on_bad_image=on_bad_image, rule=rule_of.get(name))
        _say(progress, f"{b.spec.name}: {len(b.samples)} samples from {b.source}" + (f", {len(b.skipped)} rows skipped" if b.skipped else ""))
        for row in b.skipped[:3]:
            _say(progress, f"  skipped {row}")
        if len(b.skipped) > 3:
            _say(progress, f"  ... and {len(b.skipped) - 3} more (listed in {REPORT_FILE})")
        loaded.append(b)
    names = [b.spec.name for b in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"each benchmark may appear once, found {names}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # only once every benchmark was found
    if isinstance(model_dir_or_engine, (str, Path)):
        _say(progress, f"loading model {model_dir_or_engine} ...")
    engine, model_label = _engine_for(model_dir_or_engine, batch_size, device, progress)
    t0 = time.monotonic()
    results = {
        b.spec.name: evaluate_samples(
            engine, b.spec, b.samples, out, b.source, max_new_tokens, judge, seed,
            release_images=True, progress=progress, skipped=b.skipped,
        )
        for b in loaded
    }  # fmt: skip
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
            "on_bad_image": on_bad_image,
            "rules": dict(rule_of),
            "seconds": round(time.monotonic() - t0, 2),
        },
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    report.save(out / REPORT_FILE)
    return report


def _rules_by_benchmark(rules: Mapping[str, str], benchmarks: Mapping[str, object]) -> dict[str, str]:
    """{benchmark key as given: rule}; a rule naming no listed benchmark, or a known one, is an error now."""
    by_lower = {name.strip().lower(): name for name in benchmarks}
    out = {}
    for name, rule in rules.items():
        key = by_lower.get(name.strip().lower())
        if key is None:
            raise ValueError(f"--rule {name}={rule}: no benchmark {name!r} among {list(benchmarks)}")
        spec = find_spec(key)
        if spec is not None:
            raise ValueError(f"--rule {name}={rule}: {spec.name} is scored by its published rule; rules apply to custom sets")
        out[key] = rule
    return out
