"""Seeded procedural visual world (shapes, charts, grids) with full ground truth.

Re-exports the entry points so callers can write
``from retrieval.world import generate, sample_world, WorldImage``; labeled questions
live in ``retrieval.world.tasks``.
"""

from retrieval.world.core import DIFFICULTIES, KINDS, WorldImage, generate, sample_world

__all__ = ["DIFFICULTIES", "KINDS", "WorldImage", "generate", "sample_world"]
