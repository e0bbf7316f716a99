"""`image_pool`: every configured image source, as webdataset shards plus a LanceDB table.

Sources are plug-ins (`retrieval.sources`): the procedural world at several
difficulties, scikit-image's packaged photos, any user folder, existing
webdataset shards, and the images (never the answers) of benchmark-style
files (VLMEvalKit TSV, HF parquet, JSONL). Adding is incremental and
idempotent (known ids are skipped, new shards appended); corrupt inputs are
counted, quarantined and listed in the metadata, never fatal. Embeddings are
the `embedder` asset's.
"""


from itertools import chain

import dagster as dg

from assets.lineage import artifact, record_lineage
from assets.resources import ZeroforgeHome
from evaluation.plots import contact_sheet, png_markdown
from retrieval.pool import ImagePool
from retrieval.sources import build_source


class ImagePoolConfig(dg.Config):
    procedural_images: int = 2000
    procedural_seed: int = 0
    image_size: int = 64
    include_skimage: bool = True
    folders: list[str] = []
    shards: list[str] = []  # existing webdataset tar shards: paths or brace patterns
    benchmark_files: list[str] = []  # NAME=PATH of VLMEvalKit TSV / HF parquet / JSONL files: images only, no answers


def _sources(config: ImagePoolConfig):
    yield build_source("procedural", n=config.procedural_images, seed=config.procedural_seed, size=config.image_size)
    if config.include_skimage:
        yield build_source("skimage")
    for folder in config.folders:
        yield build_source("folder", root=folder)
    if config.shards:
        yield build_source("shards", urls=config.shards)
    if config.benchmark_files:
        import evaluation.pool_source  # noqa: F401  (registers the "benchmark" source)

        for spec in config.benchmark_files:
            yield build_source("benchmark", spec=spec)


@dg.asset(group_name="foundation", kinds={"webdataset", "lancedb"})
def image_pool(context: dg.AssetExecutionContext, config: ImagePoolConfig, home: ZeroforgeHome) -> dg.MaterializeResult:
    """Images from every configured source, sharded and indexed."""
    pool = ImagePool(home.pool_root())
    report = pool.add(
        chain.from_iterable(src.iter_items() for src in _sources(config)),
        quarantine_dir=home.quarantine_dir("image_pool"),
    )
    for r in report.rejections:
        context.log.warning(f"rejected {r['source']}:{r['ref']}: {r['reason']} (quarantined at {r['quarantine']})")
    df = pool.records()
    by_source = df.groupby("source").size().to_dict()
    by_difficulty = df.groupby("difficulty").size().to_dict()
    # up to 8 images of each source, so a team sees what every source contributed
    preview_ids = [
        i for s, n in sorted(by_source.items()) for i in pool.sample(min(8, int(n)), seed=0, where=f"source = '{s}'")
    ]
    sheet = contact_sheet([pool.get_image(i) for i in preview_ids], cols=8)
    rejection_table = "| source | file | reason |\n|---|---|---|\n" + "\n".join(
        f"| {r['source']} | {r['ref']} | {r['reason']} |" for r in report.rejections[:50]
    )
    rec = record_lineage(home.path, "image_pool", None, artifact("dir", pool.shard_dir), config=config.model_dump(),
                         run_id=context.run_id, log=context.log)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(rec["output"]["hash"]),
        metadata={
            "content_hash": rec["output"]["hash"],
            "root": dg.MetadataValue.path(str(pool.root)),
            "images": len(df),
            "added": report.added,
            "duplicates_skipped": report.duplicates,
            "rejected": report.rejected,
            "shards": len(pool.shards()),
            "new_shards": dg.MetadataValue.json(report.shards),
            "by_source": dg.MetadataValue.json({k: int(v) for k, v in by_source.items()}),
            "by_difficulty": dg.MetadataValue.json({str(k): int(v) for k, v in by_difficulty.items()}),
            "rejections": dg.MetadataValue.md(rejection_table if report.rejections else "none"),
            "pool preview, 8 images per source (PNG)": dg.MetadataValue.md(png_markdown(sheet, "pool preview")),
        }
    )
