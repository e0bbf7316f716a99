"""Image sources as plug-ins; importing this package registers the built-in ones.

Built-ins: "procedural" (the seeded world), "folder" (any directory of images), "shards"
(existing webdataset tar shards) and
"skimage" (scikit-image's bundled sample photos).  Use ``build_source(name, **kwargs)``
and iterate ``iter_items()``; route ``Rejected`` items to ``quarantine``.
"""

from retrieval.sources import folder, procedural, shards_source, skimage_photos  # noqa: F401  (registration)
from retrieval.sources.base import (
    ImageRecord,
    ImageSource,
    Rejected,
    available_sources,
    build_source,
    register_source,
)
from retrieval.sources.quarantine import quarantine

__all__ = ["ImageRecord", "ImageSource", "Rejected", "available_sources", "build_source",
           "quarantine", "register_source"]
