"""Readers on small fixture files written here: VLMEvalKit TSV, HF parquet, JSONL + images."""

import base64
import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from evaluation.benchmarks import find_spec, load_benchmark, parse_bench_arg, resolve_source
from evaluation.readers import (
    BenchmarkFileError,
    BenchmarkFormatError,
    options_from_text,
    read_hf_parquet,
    read_jsonl,
    read_vlmeval_tsv,
)

COLORS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}


def png(color: str, size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, COLORS[color]).save(buf, format="PNG")
    return buf.getvalue()


def b64(color: str) -> str:
    return base64.b64encode(png(color)).decode()


def pixel(img) -> tuple:
    return img.convert("RGB").getpixel((0, 0))


def write_tsv(path, rows):
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


MC_ROWS = [
    {"index": 10, "image": b64("red"), "question": "Which color?", "answer": "A", "A": "red", "B": "blue",
     "C": "green", "D": "", "hint": "look closely", "category": "color", "split": "dev"},
    # 64 chars or fewer: the index of the row holding the image.
    {"index": 11, "image": "10", "question": "Same picture?", "answer": "B", "A": "no", "B": "yes",
     "C": "", "D": "", "hint": "", "category": "reuse", "split": "dev"},
    {"index": 12, "image": str([b64("blue"), "10"]), "question": "Two pictures: first color?", "answer": "None",
     "A": "blue", "B": "red", "C": "None", "D": "", "hint": "", "category": "multi", "split": "test"},
]


def test_tsv_base64_reference_and_multi_image(tmp_path):
    samples = read_vlmeval_tsv(write_tsv(tmp_path / "MMStar.tsv", MC_ROWS))
    assert [s.id for s in samples] == ["10", "11", "12"]
    first, ref, multi = samples
    assert pixel(first.images[0]) == COLORS["red"] and first.images[0].size == (8, 6)
    assert first.options == {"A": "red", "B": "blue", "C": "green"}  # empty D is no option
    assert first.meta["hint"] == "look closely" and first.meta["category"] == "color" and first.meta["split"] == "dev"
    assert len(ref.images) == 1 and pixel(ref.images[0]) == COLORS["red"]
    assert ref.meta["image_ref"] == "10" and first.meta["image_ref"] == "10"
    assert ref.images[0] is first.images[0] and multi.images[1] is first.images[0]  # decoded once, shared
    assert [pixel(i) for i in multi.images] == [COLORS["blue"], COLORS["red"]]
    assert multi.answer == "None"  # text answers such as "None" are not turned into NaN


def test_tsv_limit_reads_first_rows_but_resolves_later_references(tmp_path):
    rows = [dict(MC_ROWS[1], index=1, image="2"), dict(MC_ROWS[0], index=2)]
    samples = read_vlmeval_tsv(write_tsv(tmp_path / "x.tsv", rows), limit=1)
    assert len(samples) == 1 and pixel(samples[0].images[0]) == COLORS["red"]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([dict(MC_ROWS[1], image="99")], "neither base64 image data .* nor the index of another row"),
        ([dict(MC_ROWS[0], image="x" * 100)], "image"),
        ([{"index": 1, "image": b64("red"), "question": "q"}], "answer"),
    ],
)
def test_tsv_bad_content_names_what_was_expected(tmp_path, rows, message):
    with pytest.raises(BenchmarkFormatError, match=message):
        read_vlmeval_tsv(write_tsv(tmp_path / "bad.tsv", rows))


def test_tsv_mathvista_choices_become_options(tmp_path):
    rows = [{"index": 1, "image": b64("green"), "question": "How many?", "answer": "4", "choices": "['3', '4', '5']",
             "question_type": "multi_choice", "answer_type": "text", "precision": ""}]
    (s,) = read_vlmeval_tsv(write_tsv(tmp_path / "MathVista_MINI.tsv", rows))
    assert s.options == {"A": "3", "B": "4", "C": "5"} and s.answer == "4" and s.meta["question_type"] == "multi_choice"


def image_struct(color):
    return {"bytes": png(color), "path": f"{color}.png"}


def test_parquet_image_structs_and_mathvista_columns(tmp_path):
    table = pa.Table.from_pylist([
        {"pid": "1", "question": "What is x?", "image": "images/1.jpg", "decoded_image": image_struct("blue"),
         "choices": None, "precision": 2.0, "answer": "1.45", "question_type": "free_form", "answer_type": "float"},
        {"pid": "2", "question": "Which?", "image": "images/2.jpg", "decoded_image": image_struct("red"),
         "choices": ["cat", "dog"], "precision": None, "answer": "dog", "question_type": "multi_choice", "answer_type": "text"},
    ])
    pq.write_table(table, tmp_path / "testmini.parquet")
    free, mc = read_hf_parquet(tmp_path / "testmini.parquet")
    assert free.id == "1" and pixel(free.images[0]) == COLORS["blue"] and len(free.images) == 1
    assert free.options == {} and free.meta["precision"] == 2.0 and free.meta["image"] == "images/1.jpg"
    assert mc.options == {"A": "cat", "B": "dog"} and mc.answer == "dog"


def test_parquet_in_hf_folder_layout_with_index_answers(tmp_path):
    (tmp_path / "data").mkdir()
    rows = [{"question": "Which part?", "options": ["leaf", "root", "stem"], "answer": "2", "image": image_struct("green")},
            {"question": "Which?", "options": ["1", "2", "3"], "answer": "0", "image": image_struct("red")}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data" / "test-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:1]), tmp_path / "data" / "train-00000-of-00001.parquet")
    spec, source, samples = load_benchmark("ai2d", tmp_path)
    assert spec.name == "AI2D" and "test-00000" in source
    assert [s.answer for s in samples] == ["C", "A"]  # 0-based indices, not option texts
    assert samples[0].id != samples[1].id


def test_parquet_repeated_question_ids_stay_unique_and_group_by_image(tmp_path):
    rows = [{"question_id": "artwork/1.jpg", "question": f"Q{i}? Please answer yes or no.", "answer": a,
             "category": "artwork", "image": image_struct("red")} for i, a in enumerate(["Yes", "No"])]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "MME.parquet")
    a, b = read_hf_parquet(tmp_path / "MME.parquet")
    assert a.id != b.id and a.meta["image_ref"] == b.meta["image_ref"] == "artwork/1.jpg"


@pytest.mark.parametrize(
    "question, expected",
    [
        ("Which is right?\nOptions: A: The cup is red., B: The cup is blue., C: none",
         {"A": "The cup is red.", "B": "The cup is blue.", "C": "none"}),
        ("Pick one.\nA. left\nB. right\nPlease answer directly.", {"A": "left", "B": "right"}),
        ("How many apples are there?", {}),
    ],
)
def test_options_embedded_in_question(question, expected):
    assert options_from_text(question) == expected


def write_jsonl(folder, records):
    (folder / "img").mkdir(exist_ok=True)
    for color in COLORS:
        (folder / "img" / f"{color}.png").write_bytes(png(color))
    path = folder / "custom.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_jsonl_custom_set(tmp_path):
    path = write_jsonl(tmp_path, [
        {"id": "a", "question": "Color?", "answer": "blue", "image": "img/blue.png", "options": ["red", "blue"], "category": "c1"},
        {"id": "b", "question": "How many?", "answer": 3, "image": "img/red.png", "source": "me"},
    ])
    mc, free = read_jsonl(path)
    assert mc.answer == "B" and mc.options == {"A": "red", "B": "blue"} and mc.meta == {"category": "c1"}
    assert pixel(mc.images[0]) == COLORS["blue"]
    assert free.answer == "3" and free.options == {} and free.meta["source"] == "me"


@pytest.mark.parametrize(
    "record, error, message",
    [
        ({"id": "a", "question": "q", "answer": "x", "image": "img/missing.png"}, BenchmarkFileError, "missing.png"),
        ({"id": "a", "question": "q", "image": "img/red.png"}, BenchmarkFormatError, "answer"),
        ({"id": "a", "question": "q", "answer": "purple", "image": "img/red.png", "options": ["red", "blue"]}, BenchmarkFormatError, "purple"),
    ],
)
def test_jsonl_errors_name_the_problem(tmp_path, record, error, message):
    with pytest.raises(error, match=message):
        read_jsonl(write_jsonl(tmp_path, [record]))


def test_missing_benchmark_file_names_expected_file(tmp_path):
    with pytest.raises(BenchmarkFileError, match="MathVista_MINI.tsv") as e:
        resolve_source(find_spec("MathVista"), tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(BenchmarkFileError, match="does not exist"):
        load_benchmark("MMStar", tmp_path / "nope")
    with pytest.raises(BenchmarkFileError, match="needs a path"):
        load_benchmark("POPE", None)
    with pytest.raises(BenchmarkFileError, match="unknown benchmark"):
        load_benchmark("MyOwnSet", None)


def test_folder_and_direct_file_resolve_to_the_same_tsv(tmp_path):
    path = write_tsv(tmp_path / "MMStar.tsv", MC_ROWS)
    by_folder = load_benchmark("mmstar", tmp_path)
    by_file = load_benchmark("MMStar", path)
    assert by_folder[0].name == by_file[0].name == "MMStar"
    assert [s.id for s in by_folder[2]] == [s.id for s in by_file[2]]


def test_custom_name_reads_jsonl_folder(tmp_path):
    write_jsonl(tmp_path, [{"id": "a", "question": "q", "answer": "red", "image": "img/red.png", "options": ["red", "blue"]}])
    spec, source, samples = load_benchmark("MySet", tmp_path, limit=5)
    assert spec.name == "MySet" and source.endswith("custom.jsonl") and samples[0].answer == "A"


@pytest.mark.parametrize(
    "text, expected",
    [("MathVista=/data/vlmeval", ("MathVista", "/data/vlmeval")), ("procedural", ("procedural", None)), ("x=", ("x", None))],
)
def test_parse_bench_arg(text, expected):
    assert parse_bench_arg(text) == expected


def test_tsv_empty_image_cell_is_a_text_only_question(tmp_path):
    rows = [dict(MC_ROWS[0]), dict(MC_ROWS[0], index=20, image="")]
    _, text_only = read_vlmeval_tsv(write_tsv(tmp_path / "HallusionBench.tsv", rows))
    assert text_only.images == [] and text_only.question == MC_ROWS[0]["question"]


def test_parquet_list_answers_keep_every_gold(tmp_path):
    rows = [{"question": "Value?", "answer": ["12", "twelve"], "type": "human_test", "image": image_struct("red")}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    (s,) = read_hf_parquet(tmp_path / "test.parquet")
    assert s.answer == "12" and s.meta["answers"] == ["12", "twelve"] and s.meta["type"] == "human_test"


@pytest.mark.parametrize("reader, name, good", [
    (read_vlmeval_tsv, "bench.tsv", "index\tquestion\tanswer\timage\n0\tok?\tyes\t\n"),
    (read_jsonl, "bench.jsonl", '{"id": 0, "question": "ok?", "answer": "yes", "image": "a.png"}\n'),
])
def test_non_utf8_benchmark_file_names_the_line(tmp_path, reader, name, good):
    path = tmp_path / name
    path.write_bytes(good.encode() + "caf\xe9?".encode("latin1") + b"\n")  # a latin-1 byte on line 2 or 3
    with pytest.raises(BenchmarkFormatError, match=r"line \d+: byte 0xe9 is not UTF-8"):
        reader(path)
