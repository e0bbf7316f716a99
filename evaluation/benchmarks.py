"""Benchmark registry: a name + a path becomes a scorer and a list of `BenchSample`s.

A benchmark is configured by name and path, as users write it on the command
line (`--bench MathVista=/data/vlmeval`): the path may be the exact file
(.tsv, .parquet, .jsonl) or a folder, in which the registry looks for the
VLMEvalKit file name (`MathVista_MINI.tsv`), then Hugging Face parquet shards
of the benchmark's split (`testmini-00000-of-00001.parquet`, also under
`data/`), then `<name>.jsonl`. Nothing found gives an error naming what was
expected where. Names are case-insensitive; an unknown name is a custom set, scored
per question by the rules of `evaluation.custom` (multiple choice with
options, yes/no for yes/no gold answers, VQA-normalised exact match
otherwise; a `rule` column or `rule=` chooses another) and needs a path.
`procedural` needs none.

    spec, source, samples = load_benchmark("MMStar", "/data/vlmeval", limit=50)
    spec.scorer.prompt(samples[0])
    loaded = open_benchmark("MySet", "/data/my.jsonl", on_bad_image="skip", rule="exact")
    loaded.samples, loaded.skipped      # skipped: one "file row: reason" line per row left out
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evaluation.custom import CustomScorer, resolve_rules
from evaluation.readers import (
    BenchmarkFileError,
    BenchmarkFormatError,
    BenchSample,
    answer_letter,
    check_on_bad_image,
    read_samples,
)
from evaluation.scorers import (
    ChartQAScorer,
    HallusionBenchScorer,
    MathVistaScorer,
    MMEScorer,
    MultipleChoiceScorer,
    PopeScorer,
    ProceduralAnswerScorer,
    ProceduralScorer,
    Scorer,
    YesNoScorer,
)


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark's file is looked for and how it is scored."""

    name: str
    scorer: Scorer
    tsv_files: tuple[str, ...] = ()  # VLMEvalKit names, in order of preference
    split: str = "test"  # Hugging Face split whose parquet shards are read
    answer_is_index: bool = False  # HF gold answers are 0-based option indices (AI2D, ScienceQA)
    needs_path: bool = True


PROCEDURAL = "procedural"
# The same test-split images asked as yes/no and as open questions (`evaluation.procedural.KINDS`).
PROCEDURAL_YESNO = "procedural_yesno"
PROCEDURAL_OPEN = "procedural_open"

BENCHMARKS: dict[str, BenchmarkSpec] = {
    s.name: s
    for s in (
        BenchmarkSpec("MathVista", MathVistaScorer(), ("MathVista_MINI.tsv",), "testmini"),
        BenchmarkSpec("ChartQA", ChartQAScorer(), ("ChartQA_TEST.tsv",), "test"),
        BenchmarkSpec("AI2D", MultipleChoiceScorer(), ("AI2D_TEST.tsv", "AI2D_TEST_NO_MASK.tsv"), "test", True),
        BenchmarkSpec("ScienceQA", MultipleChoiceScorer(), ("ScienceQA_TEST.tsv", "ScienceQA_VAL.tsv"), "test", True),
        BenchmarkSpec("MMStar", MultipleChoiceScorer(), ("MMStar.tsv",), "val"),
        BenchmarkSpec("RealWorldQA", MultipleChoiceScorer(), ("RealWorldQA.tsv",), "test"),
        BenchmarkSpec("MMMU", MultipleChoiceScorer(), ("MMMU_DEV_VAL.tsv",), "validation"),
        BenchmarkSpec("POPE", PopeScorer(), ("POPE.tsv",), "test"),
        BenchmarkSpec("MME", MMEScorer(), ("MME.tsv",), "test"),
        BenchmarkSpec("HallusionBench", HallusionBenchScorer(), ("HallusionBench.tsv",), "image"),
        BenchmarkSpec(PROCEDURAL, ProceduralScorer(), needs_path=False),
        BenchmarkSpec(PROCEDURAL_YESNO, ProceduralAnswerScorer("yesno"), needs_path=False),
        BenchmarkSpec(PROCEDURAL_OPEN, ProceduralAnswerScorer("open"), needs_path=False),
    )
}


def find_spec(name: str) -> BenchmarkSpec | None:
    """The registered benchmark called `name` (any case, or by its TSV stem, e.g. MathVista_MINI)."""
    key = name.strip().lower()
    for spec in BENCHMARKS.values():
        if key == spec.name.lower() or key in (Path(f).stem.lower() for f in spec.tsv_files):
            return spec
    return None


def custom_spec(name: str) -> BenchmarkSpec:
    return BenchmarkSpec(name, CustomScorer())


def is_custom(spec: BenchmarkSpec) -> bool:
    return isinstance(spec.scorer, CustomScorer)


def _split_shards(folder: Path, split: str) -> list[Path]:
    """Parquet shards of `split` in `folder` or one level below (HF layouts `data/`, `<config>/`):
    `<split>.parquet`, `<split>-00000-of-00001.parquet`, `<split>/*.parquet`. Not deeper, so a
    broad folder is not searched wholesale."""
    found = []
    for p in sorted([*folder.glob("*.parquet"), *folder.glob("*/*.parquet")]):
        stem = p.stem.lower()
        if stem == split or stem.startswith(f"{split}-") or stem.startswith(f"{split}_") or p.parent.name.lower() == split:
            found.append(p)
    return found


def resolve_source(spec: BenchmarkSpec, path: str | Path | None) -> Path | list[Path] | None:
    """The file (or parquet shards) to read for `spec` given the user's path; errors name what was expected."""
    if path is None or str(path) == "":
        if spec.needs_path:
            expect = ", ".join(spec.tsv_files) or f"{spec.name}.jsonl"
            raise BenchmarkFileError(f"benchmark {spec.name} needs a path: a folder holding {expect} (or parquet shards), or the file itself")
        return None
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.exists():
        raise BenchmarkFileError(f"benchmark {spec.name}: path {p} does not exist (expected a benchmark file or a folder holding one)")
    for name in spec.tsv_files:
        if (p / name).is_file():
            return p / name
    shards = _split_shards(p, spec.split)
    if shards:
        return shards if len(shards) > 1 else shards[0]
    for candidate in (p / f"{spec.name}.jsonl", p / "data.jsonl"):
        if candidate.is_file():
            return candidate
    jsonls = sorted(p.glob("*.jsonl"))
    if not spec.tsv_files and len(jsonls) == 1:
        return jsonls[0]
    found = sorted(x.name for x in p.iterdir())[:15]
    expected = [*spec.tsv_files, f"{spec.split}*.parquet", f"{spec.name}.jsonl"]
    raise BenchmarkFileError(f"benchmark {spec.name}: expected one of {expected} in {p}, found {found}")


def _check_samples(
    spec: BenchmarkSpec, samples: list[BenchSample], source, rule: str | None = None, skipped: list[str] | None = None
) -> list[BenchSample]:
    """Fail before any generation when gold answers do not fit the scorer."""
    if not samples:
        if skipped:
            raise BenchmarkFormatError(
                f"benchmark {spec.name}: every row of {source} was skipped for its image ({len(skipped)} rows; first: {skipped[0]})"
            )
        raise BenchmarkFormatError(f"benchmark {spec.name}: {source} holds no samples")
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise BenchmarkFormatError(f"benchmark {spec.name}: sample ids must be unique, found {dup!r} twice in {source}")
    if is_custom(spec):
        resolve_rules(samples, spec.name, rule)
    elif isinstance(spec.scorer, MultipleChoiceScorer):
        for s in samples:
            if s.options:
                s.answer = answer_letter(s.answer, s.options, False, f"{spec.name} sample {s.id}")
    if isinstance(spec.scorer, YesNoScorer):
        from evaluation.answers import gold_yes_no

        for s in samples:
            gold_yes_no(s.answer, f"{spec.name} sample {s.id}")
    return samples


@dataclass
class LoadedBenchmark:
    """A benchmark ready to run: its spec, where it was read from, its samples, and the rows left out."""

    spec: BenchmarkSpec
    source: str
    samples: list[BenchSample]
    skipped: list[str] = field(default_factory=list)  # one "file row: reason" per row left out (on_bad_image="skip")


def open_benchmark(
    name: str,
    path: str | Path | None = None,
    limit: int | None = None,
    *,
    on_bad_image: str = "error",
    rule: str | None = None,
) -> LoadedBenchmark:
    """Read and check a benchmark by name and path, before any model is loaded.

    `procedural` takes no path; a path that is a positive integer sets its
    number of images (default `evaluation.procedural.DEFAULT_IMAGES`).
    `on_bad_image`: "error" stops at the first row whose image is missing or
    does not decode (the message names file and row); "skip" leaves such rows
    out and lists them in `skipped`. `rule`: for a custom set, the rule of its
    questions without options (`evaluation.custom.OPEN_RULES`, default auto);
    known benchmarks keep their published rule, so a rule for one is an error.
    """
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of samples, found {limit}")
    check_on_bad_image(on_bad_image)
    spec = find_spec(name)
    if spec is not None and rule not in (None, "", "auto"):
        raise ValueError(f"--rule {name}={rule}: {spec.name} is scored by its published rule; rules apply to custom sets")
    if spec is not None and spec.name in (PROCEDURAL, PROCEDURAL_YESNO, PROCEDURAL_OPEN):
        from evaluation.procedural import DEFAULT_IMAGES, KINDS, describe, procedural_samples

        n_images = DEFAULT_IMAGES
        if path not in (None, ""):
            if not str(path).isdigit() or int(path) <= 0:
                raise BenchmarkFileError(f"benchmark {spec.name} takes no path (or a number of images), found {path!r}")
            n_images = int(path)
        kind = KINDS[spec.name]
        samples = procedural_samples(n_images, limit=limit, kind=kind)
        return LoadedBenchmark(spec, describe(n_images, kind=kind), _check_samples(spec, samples, spec.name))
    if spec is None:
        if path in (None, ""):
            known = sorted(BENCHMARKS)
            raise BenchmarkFileError(f"unknown benchmark {name!r} without a path: expected one of {known}, or NAME=PATH for a custom set")
        spec = custom_spec(name)
    resolved = resolve_source(spec, path)
    skipped: list[str] = []
    samples = read_samples(resolved, limit, spec.answer_is_index, on_bad_image, skipped)
    label = ", ".join(str(x) for x in resolved) if isinstance(resolved, list) else str(resolved)
    return LoadedBenchmark(spec, label, _check_samples(spec, samples, label, rule, skipped), skipped)


def load_benchmark(
    name: str, path: str | Path | None = None, limit: int | None = None, **options
) -> tuple[BenchmarkSpec, str, list[BenchSample]]:
    """(spec, source description, samples) for a benchmark name and path; `options` as `open_benchmark`."""
    loaded = open_benchmark(name, path, limit, **options)
    return loaded.spec, loaded.source, loaded.samples


def parse_bench_arg(text: str) -> tuple[str, str | None]:
    """'MathVista=/data/vlmeval' -> ('MathVista', '/data/vlmeval'); 'procedural' -> ('procedural', None)."""
    name, sep, path = text.partition("=")
    if not name.strip():
        raise ValueError(f"expected NAME=PATH or NAME, found {text!r}")
    return name.strip(), (path.strip() or None) if sep else None
