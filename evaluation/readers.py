"""Readers for benchmark files users already have on disk, normalised to `BenchSample`.

Three formats (see docs/benchmarks.md and the shared reference): VLMEvalKit
TSV (base64 images, short `image` values referencing another row's image,
option columns A..I), Hugging Face parquet as lmms-eval reads it (image
structs with `bytes`), and a plain JSONL + image folder for custom sets. All
of them come out as the same `BenchSample(id, images, question, answer,
options, meta)`, so scorers and the runner never look at file formats.
`evaluation.benchmarks` decides which file to read for a benchmark name.

    samples = read_samples("/data/vlmeval/MMStar.tsv", limit=100)
    samples[0].images[0].size, samples[0].options["A"], samples[0].meta["category"]

Every image is decoded in full while reading (`evaluation.input_checks`), so
a truncated or corrupt picture is reported with its file and row before any
model is loaded, never as a traceback halfway through generation. Such a
row stops the read (`on_bad_image="error"`, the default) or is left out and
listed (`on_bad_image="skip"`, messages appended to a `skipped` list). The
samples then hold lazily opened images (header only), so a large benchmark
does not sit in memory decoded.
"""

from __future__ import annotations

import ast
import io
import json
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from evaluation.input_checks import (  # noqa: F401  (errors and ON_BAD_IMAGE re-exported: callers import them from here)
    ON_BAD_IMAGE,
    ON_BAD_IMAGE_HELP,
    SKIP_HINT,
    BadImageError,
    BenchmarkFileError,
    BenchmarkFormatError,
    ImageProblem,
    MissingImageError,
    RowGuard,
    check_on_bad_image,
    decode_image,
    open_relative,
    utf8_text,
)

OPTION_LETTERS = tuple(string.ascii_uppercase[:9])  # VLMEvalKit option columns: A..I
# VLMEvalKit writes an image once; a later row showing the same image stores
# the first row's `index` (a short string) instead of the base64 data.
MAX_REFERENCE_CHARS = 64


@dataclass
class BenchSample:
    """One benchmark question: images shown before the text, gold answer, lettered options."""

    id: str
    images: list[Image.Image]
    question: str
    answer: str
    options: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- helpers


def parse_list(value: Any) -> list | None:
    """A list from a list, a numpy array, or its string form ("['a', 'b']" or JSON); None if empty."""
    if value is None:
        return None
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value) or None
    text = str(value).strip()
    if not text or text.lower() in ("nan", "none"):
        return None
    if text.startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                out = parse(text)
                return list(out) or None
            except (ValueError, SyntaxError):
                continue
    raise BenchmarkFormatError(f"expected a list (e.g. \"['a', 'b']\"), found {text[:80]!r}")


def options_from_list(items: Sequence) -> dict[str, str]:
    if len(items) > len(OPTION_LETTERS):
        raise BenchmarkFormatError(f"at most {len(OPTION_LETTERS)} options are supported, found {len(items)}: {items!r}")
    return {letter: str(text) for letter, text in zip(OPTION_LETTERS, items)}


_OPTION_MARK = re.compile(r"(?:^|(?<=[\s,]))([A-I])[.:]\s")


def options_from_text(question: str) -> dict[str, str]:
    """Options embedded in the question ("Options: A: x, B: y" as in lmms-eval's MMStar); {} if none.

    Markers must run A, B, C, ... in order, so a stray "B." inside an option's
    text is not mistaken for the next option.
    """
    head, sep, tail = question.rpartition("Options:")
    if not sep:
        # RealWorldQA-style: options on their own lines "A. ...", no header.
        lines = [ln.strip() for ln in question.splitlines()]
        found = {}
        for ln in lines:
            m = re.match(r"^([A-I])[.:]\s+(.+)$", ln)
            if m and m.group(1) == OPTION_LETTERS[len(found)]:
                found[m.group(1)] = m.group(2).strip()
        return found if len(found) >= 2 else {}
    marks = []
    for m in _OPTION_MARK.finditer(tail):
        if m.group(1) == OPTION_LETTERS[len(marks)]:
            marks.append(m)
        if len(marks) == len(OPTION_LETTERS):
            break
    if len(marks) < 2:
        return {}
    out = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(tail)
        out[m.group(1)] = tail[m.end() : end].strip().rstrip(",").strip()
    return out


def answer_letter(answer: Any, options: dict[str, str], answer_is_index: bool, where: str) -> str:
    """The gold answer as an option letter: a letter, an option's text, or (if told) a 0-based index."""
    text = str(answer).strip()
    if answer_is_index:
        if not text.lstrip("-").isdigit() or not 0 <= int(text) < len(options):
            raise BenchmarkFormatError(f"{where}: expected a 0-based option index below {len(options)}, found {text!r}")
        return OPTION_LETTERS[int(text)]
    if text.upper() in options and len(text) == 1:
        return text.upper()
    matches = [k for k, v in options.items() if v.strip().lower() == text.lower()]
    if len(matches) == 1:
        return matches[0]
    raise BenchmarkFormatError(f"{where}: expected the answer to be an option letter {sorted(options)} or one option's text, found {text!r}")


def _meta_value(v: Any) -> Any:
    if hasattr(v, "tolist") and not isinstance(v, str):
        return v.tolist()
    return v


# ---------------------------------------------------------------- VLMEvalKit TSV


def read_vlmeval_tsv(
    path: str | Path, limit: int | None = None, on_bad_image: str = "error", skipped: list[str] | None = None
) -> list[BenchSample]:
    """Rows of a VLMEvalKit TSV as BenchSamples (the first `limit` usable rows if given)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise BenchmarkFileError(f"expected a VLMEvalKit TSV file at {path}, found nothing")
    text = utf8_text(path)
    if not text.strip():
        raise BenchmarkFormatError(
            f"{path}: the file is empty; expected a VLMEvalKit TSV: a header row (index, image, question, answer, ...) "
            "and one row per question"
        )
    try:
        # keep_default_na=False: answers such as "None" or "NA" must stay text.
        df = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise BenchmarkFormatError(f"{path}: not a readable tab-separated file ({str(e).strip().splitlines()[-1]})") from e
    has_image = "image" in df.columns
    required = ["index", "question", "answer"]
    missing = [c for c in required if c not in df.columns]
    if missing or not (has_image or "image_path" in df.columns):
        raise BenchmarkFormatError(
            f"{path}: expected VLMEvalKit columns index, image (or image_path), question, answer; "
            f"missing {missing or ['image']}; found {list(df.columns)[:20]}"
        )
    raw = dict(zip(df["index"], df["image"])) if has_image else {}
    skip = {"index", "image", "image_path", "question", "answer", *OPTION_LETTERS}
    decoded: dict[str, list[Image.Image] | ImageProblem] = {}  # rows referencing one image share its PIL objects
    guard = RowGuard(on_bad_image, skipped)
    out = []
    for rec in df.to_dict("records"):
        if limit is not None and len(out) >= limit:
            break
        idx = rec["index"]
        where = f"{path.name} row index={idx}"
        with guard:
            if has_image:
                images, root = _tsv_images(rec["image"], raw, idx, where, decoded)
            else:
                images, root = [open_relative(path.parent, p, where) for p in _tsv_paths(rec["image_path"])], idx
        if guard.skipped_it:
            continue
        options = {k: rec[k] for k in OPTION_LETTERS if k in rec and rec[k].strip() != ""}
        meta = {k: v for k, v in rec.items() if k not in skip}
        meta["image_ref"] = root
        if not options and meta.get("choices", "").strip():
            options = options_from_list(parse_list(meta["choices"]) or [])
        out.append(BenchSample(str(idx), images, rec["question"], rec["answer"], options, meta))
    return out


def _tsv_images(
    value: str, raw: dict[str, str], idx: str, where: str, decoded: dict[str, list[Image.Image] | ImageProblem]
) -> tuple[list[Image.Image], str]:
    """Decode one `image` cell: base64, an index reference, or a list of either.

    Returns the images and the index of the row that actually holds the (first)
    image, which groups rows showing the same picture (MME's acc+). Images
    decoded for a referenced row are reused, so POPE's 9,000 questions about
    500 pictures hold 500 images, not 9,000; so is a failure to decode one,
    which every row showing that picture then reports.
    """
    if not value.strip():
        return [], idx  # a text-only question (HallusionBench has some)
    items = parse_list(value) if value.strip().startswith("[") else [value]
    images, root = [], None
    for pos, item in enumerate(items or []):
        item = str(item)
        if len(item) <= MAX_REFERENCE_CHARS:
            ref = item.strip()
            target = raw.get(ref)
            if target is None:
                raise BadImageError(
                    f"{where}: image value {ref!r} is neither base64 image data (that would be longer than "
                    f"{MAX_REFERENCE_CHARS} characters) nor the index of another row (no row has index {ref!r}); {SKIP_HINT}"
                )
            if len(target) <= MAX_REFERENCE_CHARS:
                raise BadImageError(
                    f"{where}: image value {ref!r} is the index of another row, but that row's image is itself "
                    f"the short value {target.strip()!r}, not base64 image data; {SKIP_HINT}"
                )
            root = root or ref
            if ref not in decoded:
                sub = parse_list(target) if target.strip().startswith("[") else [target]
                decoded[ref] = _decode_all(sub)
            images += _cached(decoded[ref], f"{where} (image of row index={ref})")
        elif len(items) == 1:
            if idx not in decoded:
                decoded[idx] = _decode_all([item])
            images += _cached(decoded[idx], where)
        else:
            images.append(decode_image(item, f"{where} image {pos}"))
    return images, root or idx


_HERE = "\0"  # stands for the row in a cached failure, filled in by each row that shows the image


def _decode_all(items: Sequence) -> list[Image.Image] | BadImageError:
    try:
        return [decode_image(str(x), _HERE) for x in items]
    except BadImageError as e:
        return e


def _cached(entry: list[Image.Image] | BadImageError, where: str) -> list[Image.Image]:
    if isinstance(entry, BadImageError):
        raise BadImageError(str(entry).replace(_HERE, where, 1)) from entry.__cause__
    return entry


def _tsv_paths(value: str) -> list[str]:
    return [str(x) for x in (parse_list(value) if value.strip().startswith("[") else [value])]


# ---------------------------------------------------------------- Hugging Face parquet

_ID_COLUMNS = ("index", "pid", "id", "question_id", "sample_id")
_ANSWER_COLUMNS = ("answer", "gt_answer", "label")


def _is_image_struct(v: Any) -> bool:
    return isinstance(v, dict) and "bytes" in v


def read_hf_parquet(
    paths: str | Path | Sequence[str | Path],
    limit: int | None = None,
    answer_is_index: bool = False,
    on_bad_image: str = "error",
    skipped: list[str] | None = None,
) -> list[BenchSample]:
    """Rows of one or more HF parquet shards (in the order given) as BenchSamples.

    Every column holding image structs `{bytes, path}` (or lists of them)
    contributes images, in column order (MathVista's `decoded_image`, MMMU's
    `image_1..image_7`). `answer_is_index`: gold answers are 0-based indices
    into `options`/`choices` (lmms-eval's AI2D and ScienceQA).
    """
    import pyarrow.parquet as pq

    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    for f in files:
        if not f.is_file():
            raise BenchmarkFileError(f"expected a parquet file at {f}, found nothing")
    out: list[BenchSample] = []
    seen: dict[str, int] = {}
    guard = RowGuard(on_bad_image, skipped)
    k = 0  # rows read over all shards: names id-less rows, skipped ones included
    for f in files:
        row_in_file = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=64):
            for row in batch.to_pylist():
                if limit is not None and len(out) >= limit:
                    return out
                with guard:
                    sample = _parquet_sample(row, f, f"{f.name} row {row_in_file}", k, seen, answer_is_index)
                k, row_in_file = k + 1, row_in_file + 1
                if not guard.skipped_it:
                    out.append(sample)
    return out


def _parquet_sample(row: dict, f: Path, where: str, k: int, seen: dict[str, int], answer_is_index: bool) -> BenchSample:
    if "question" not in row:
        raise BenchmarkFormatError(f"{where}: expected a 'question' column, found {sorted(row)}")
    ans_col = next((c for c in _ANSWER_COLUMNS if c in row), None)
    if ans_col is None:
        raise BenchmarkFormatError(f"{where}: expected an answer column {_ANSWER_COLUMNS}, found {sorted(row)}")
    images, image_cols = [], []
    for col, v in row.items():
        structs = [v] if _is_image_struct(v) else [x for x in v if _is_image_struct(x)] if isinstance(v, list) else []
        for s in structs:
            if s.get("bytes"):
                images.append(decode_image(s["bytes"], f"{where} column {col}"))
            elif s.get("path"):
                images.append(open_relative(f.parent, s["path"], f"{where} column {col}"))
        if structs:
            image_cols.append(col)
    id_col = next((c for c in _ID_COLUMNS if row.get(c) is not None), None)
    sid = str(row[id_col]) if id_col else f"{f.stem}-{k}"
    # MME's question_id names the image and repeats for its two questions.
    seen[sid] = seen.get(sid, 0) + 1
    if seen[sid] > 1:
        sid = f"{sid}#{seen[sid]}"
    answer = row[ans_col]
    meta = {c: _meta_value(v) for c, v in row.items() if c not in image_cols and c not in ("question", ans_col)}
    if isinstance(answer, (list, tuple)) or hasattr(answer, "tolist"):
        answers = [str(a) for a in _meta_value(answer)]
        meta["answers"] = answers
        answer = answers[0] if answers else ""
    options: dict[str, str] = {k_: str(row[k_]) for k_ in OPTION_LETTERS if row.get(k_) not in (None, "")}
    for col in ("options", "choices"):
        if not options and row.get(col) is not None:
            options = options_from_list(parse_list(row[col]) or [])
    if not options:
        options = options_from_text(row["question"])
        meta["options_in_question"] = bool(options)
    answer = str(answer)
    if answer_is_index and options:
        answer = answer_letter(answer, options, True, where)
    meta.setdefault("image_ref", str(row.get("question_id") or sid))
    return BenchSample(sid, images, str(row["question"]), answer, options, meta)


# ---------------------------------------------------------------- JSONL + image folder


def read_jsonl(
    path: str | Path, limit: int | None = None, on_bad_image: str = "error", skipped: list[str] | None = None
) -> list[BenchSample]:
    """A custom set: one JSON object per line with id, question, answer, image (path relative to the file).

    Optional: `images` (a list, instead of `image`), `options` (list or
    {letter: text}; the answer may then be a letter or an option's text),
    `answers` (every accepted gold answer), `rule` (see `evaluation.custom`),
    `category`; any other keys go to `meta`.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkFileError(f"expected a JSONL file at {path}, found nothing")
    guard = RowGuard(on_bad_image, skipped)
    out = []
    for lineno, line in enumerate(utf8_text(path).splitlines(), 1):
        if not line.strip():
            continue
        if limit is not None and len(out) >= limit:
            break
        where = f"{path.name} line {lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise BenchmarkFormatError(f"{where}: expected one JSON object per line ({e})") from e
        missing = [k for k in ("id", "question", "answer") if k not in rec]
        if missing or not ("image" in rec or "images" in rec):
            raise BenchmarkFormatError(f"{where}: expected keys id, question, answer, image; missing {missing or ['image']}")
        rels = rec["images"] if "images" in rec else [rec["image"]]
        with guard:
            images = [open_relative(path.parent, str(r), where) for r in rels]
        if guard.skipped_it:
            continue
        opts = rec.get("options") or {}
        options = {str(k).upper(): str(v) for k, v in opts.items()} if isinstance(opts, dict) else options_from_list(opts)
        answer = str(rec["answer"])
        if options:
            answer = answer_letter(answer, options, False, where)
        meta = {k: v for k, v in rec.items() if k not in ("id", "question", "answer", "image", "images", "options")}
        out.append(BenchSample(str(rec["id"]), images, str(rec["question"]), answer, options, meta))
    return out


def read_samples(
    path: str | Path | Iterable[Path],
    limit: int | None = None,
    answer_is_index: bool = False,
    on_bad_image: str = "error",
    skipped: list[str] | None = None,
) -> list[BenchSample]:
    """Dispatch on the file suffix: .tsv, .parquet (or a list of shards), .jsonl.

    `on_bad_image`: "error" (default) raises on the first row whose image is
    missing or does not decode; "skip" leaves such rows out and appends one
    message per row (file, row, reason) to `skipped`.
    """
    if not isinstance(path, (str, Path)):
        return read_hf_parquet(list(path), limit, answer_is_index, on_bad_image, skipped)
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".tsv":
        return read_vlmeval_tsv(p, limit, on_bad_image, skipped)
    if suffix == ".parquet":
        return read_hf_parquet(p, limit, answer_is_index, on_bad_image, skipped)
    if suffix in (".jsonl", ".json"):
        return read_jsonl(p, limit, on_bad_image, skipped)
    raise BenchmarkFormatError(f"{p}: expected a .tsv (VLMEvalKit), .parquet (Hugging Face) or .jsonl file, found suffix {suffix!r}")
