"""Retrieval: the image side of zeroforge (procedural world, image sources, shards, pool).

This package holds plain-library code with no orchestration imports: ``retrieval.world``
generates seeded images with ground truth, ``retrieval.sources`` turns anything that
yields images into ``ImageRecord`` streams, ``retrieval.shards`` stores them as
webdataset tar shards and ``retrieval.pool`` indexes the shards in LanceDB.
"""
