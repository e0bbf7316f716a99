"""Bad benchmark input: one-line errors naming file and row, and on_bad_image="skip" counting what it leaves out."""

import base64
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_evaluation_readers import MC_ROWS, b64, png, write_tsv

from evaluation.benchmarks import load_benchmark, open_benchmark
from evaluation.readers import (
    BadImageError,
    BenchmarkFileError,
    BenchmarkFormatError,
    MissingImageError,
    read_hf_parquet,
    read_jsonl,
    read_samples,
    read_vlmeval_tsv,
)


def noisy_png() -> bytes:
    """A PNG big enough that cutting it leaves valid base64 of a file with a header but no end."""
    img = Image.frombytes("RGB", (24, 24), bytes((i * 37) % 251 for i in range(24 * 24 * 3)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def truncated_png_b64() -> str:
    data = noisy_png()
    return base64.b64encode(data[: len(data) // 2]).decode()


def truncated_jpeg() -> bytes:
    img = Image.frombytes("RGB", (128, 128), bytes((i * 53) % 251 for i in range(128 * 128 * 3)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    data = buf.getvalue()
    return data[: len(data) // 2]


def test_truncated_png_fails_while_reading_naming_file_and_row(tmp_path):
    rows = [dict(MC_ROWS[0]), dict(MC_ROWS[0], index=13, image=truncated_png_b64())]
    with pytest.raises(BadImageError) as e:
        read_vlmeval_tsv(write_tsv(tmp_path / "MMStar.tsv", rows))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("MMStar.tsv row index=13: ")
    assert "not a readable JPEG/PNG image" in msg and "on_bad_image='skip'" in msg
    assert isinstance(e.value, BenchmarkFormatError)  # what callers already catch


def test_truncated_jpeg_bytes_fail_when_fully_decoded(tmp_path):
    # The header is intact, so opening alone succeeds; only decoding the pixels finds the cut.
    Image.open(io.BytesIO(truncated_jpeg())).size  # noqa: B018
    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": "a", "image": {"bytes": truncated_jpeg(), "path": "x.jpg"}}]),
                   tmp_path / "test.parquet")
    with pytest.raises(BadImageError, match=r"^test\.parquet row 0 column image: .*truncated"):
        read_hf_parquet(tmp_path / "test.parquet")


def test_skip_leaves_bad_rows_out_and_lists_them(tmp_path):
    rows = [
        dict(MC_ROWS[0]),  # index 10, good
        dict(MC_ROWS[0], index=20, image=truncated_png_b64()),
        dict(MC_ROWS[1], index=21, image="20"),  # shows row 20's broken picture
        dict(MC_ROWS[1], index=22, image="10"),  # shows row 10's good one
        dict(MC_ROWS[0], index=23, image="x" * 100),  # long, but not an image
    ]
    path = write_tsv(tmp_path / "MMStar.tsv", rows)
    skipped = []
    samples = read_vlmeval_tsv(path, on_bad_image="skip", skipped=skipped)
    assert [s.id for s in samples] == ["10", "22"]
    assert len(skipped) == 3
    assert skipped[0].startswith("MMStar.tsv row index=20: ")
    assert skipped[1].startswith("MMStar.tsv row index=21 (image of row index=20): ")
    assert skipped[2].startswith("MMStar.tsv row index=23: ")
    assert all("on_bad_image" not in m for m in skipped)  # the hint is for the error, not the list


def test_skip_limit_counts_usable_rows(tmp_path):
    rows = [dict(MC_ROWS[0], index=1, image=truncated_png_b64()), dict(MC_ROWS[0], index=2), dict(MC_ROWS[0], index=3)]
    skipped = []
    samples = read_samples(write_tsv(tmp_path / "x.tsv", rows), limit=2, on_bad_image="skip", skipped=skipped)
    assert [s.id for s in samples] == ["2", "3"] and len(skipped) == 1


def test_other_format_errors_are_not_skipped(tmp_path):
    rows = [{"index": 1, "image": b64("red"), "question": "q"}]  # no answer column: the file is wrong, not a row
    with pytest.raises(BenchmarkFormatError, match="answer"):
        read_vlmeval_tsv(write_tsv(tmp_path / "x.tsv", rows), on_bad_image="skip", skipped=[])


def test_unknown_on_bad_image_value():
    with pytest.raises(ValueError, match="on_bad_image must be one of"):
        load_benchmark("procedural", limit=2, on_bad_image="ignore")


def test_jsonl_missing_image_is_skippable(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "red.png").write_bytes(png("red"))
    records = [{"id": "a", "question": "q", "answer": "x", "image": "img/red.png"},
               {"id": "b", "question": "q", "answer": "y", "image": "img/gone.png"}]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(MissingImageError, match=r"^set\.jsonl line 2: expected image file .*gone\.png"):
        read_jsonl(path)
    skipped = []
    assert [s.id for s in read_jsonl(path, on_bad_image="skip", skipped=skipped)] == ["a"]
    assert skipped[0].startswith("set.jsonl line 2: ") and isinstance(MissingImageError("x"), BenchmarkFileError)


def test_parquet_skip_names_the_row_in_its_file(tmp_path):
    good = {"bytes": png("red"), "path": "r.png"}
    rows = [{"question": "q0", "answer": "a", "image": good}, {"question": "q1", "answer": "b", "image": {"bytes": b"junk", "path": "j.png"}},
            {"question": "q2", "answer": "c", "image": good}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    skipped = []
    samples = read_hf_parquet(tmp_path / "test.parquet", on_bad_image="skip", skipped=skipped)
    assert [s.question for s in samples] == ["q0", "q2"] and [s.id for s in samples] == ["test-0", "test-2"]
    assert skipped == ["test.parquet row 1 column image: image (bytes) is not a readable JPEG/PNG image: "
                       "no image format PIL reads starts this data"]


def test_open_benchmark_reports_skipped_rows(tmp_path):
    rows = [dict(MC_ROWS[0]), dict(MC_ROWS[0], index=20, image=truncated_png_b64())]
    write_tsv(tmp_path / "MMStar.tsv", rows)
    loaded = open_benchmark("MMStar", tmp_path, on_bad_image="skip")
    assert [s.id for s in loaded.samples] == ["10"] and len(loaded.skipped) == 1 and "row index=20" in loaded.skipped[0]
    with pytest.raises(BadImageError, match="row index=20"):
        open_benchmark("MMStar", tmp_path)  # the default stops


def test_every_row_skipped_is_an_error(tmp_path):
    write_tsv(tmp_path / "MMStar.tsv", [dict(MC_ROWS[0], index=20, image=truncated_png_b64())])
    with pytest.raises(BenchmarkFormatError, match=r"every row of .*MMStar\.tsv was skipped for its image \(1 rows; first: "):
        open_benchmark("MMStar", tmp_path, on_bad_image="skip")


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_tsv_names_the_file(tmp_path, content):
    path = tmp_path / "MMStar.tsv"
    path.write_text(content)
    with pytest.raises(BenchmarkFormatError, match=r"MMStar\.tsv: the file is empty; expected a VLMEvalKit TSV: a header row"):
        read_vlmeval_tsv(path)


def test_header_only_tsv_holds_no_samples(tmp_path):
    path = tmp_path / "MMStar.tsv"
    path.write_text("index\timage\tquestion\tanswer\n")
    with pytest.raises(BenchmarkFormatError, match=r"benchmark MMStar: .*MMStar\.tsv holds no samples"):
        load_benchmark("MMStar", path)


def test_ragged_tsv_names_the_file(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("index\timage\tquestion\tanswer\n1\t\tq\ta\n2\t\tq\ta\textra\tmore\n")
    with pytest.raises(BenchmarkFormatError, match=r"bad\.tsv: not a readable tab-separated file \(.*Expected 4 fields in line 3, saw 6"):
        read_vlmeval_tsv(path)


@pytest.mark.parametrize(
    "rows, message",
    [
        # a short value that is no row's index: both readings are named
        ([dict(MC_ROWS[0]), dict(MC_ROWS[1], image="abc")],
         "x.tsv row index=11: image value 'abc' is neither base64 image data (that would be longer than 64 characters) "
         "nor the index of another row (no row has index 'abc')"),
        # the index of a row whose own image is a reference
        ([dict(MC_ROWS[0]), dict(MC_ROWS[1], index=11, image="10"), dict(MC_ROWS[1], index=12, image="11")],
         "x.tsv row index=12: image value '11' is the index of another row, but that row's image is itself "
         "the short value '10', not base64 image data"),
    ],
)
def test_short_image_values_explain_both_readings(tmp_path, rows, message):
    with pytest.raises(BadImageError) as e:
        read_vlmeval_tsv(write_tsv(tmp_path / "x.tsv", rows))
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_good_images_come_back_lazily_opened(tmp_path):
    (s,) = read_vlmeval_tsv(write_tsv(tmp_path / "x.tsv", [MC_ROWS[0]]))
    img = s.images[0]
    assert img._im is None  # PIL's pixel store: empty until the image is used
    assert img.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_missing_folder_still_a_file_error(tmp_path):
    with pytest.raises(BenchmarkFileError, match="does not exist"):
        open_benchmark("MMStar", tmp_path / "nope")
