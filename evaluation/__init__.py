"""zeroforge.evaluation: deterministic scoring of VLMs, as a plain library.

Every score comes with its sample count and a 95% interval (`evaluation.stats`),
since small test sets move by several points from noise alone. No dagster
imports: `zeroforge eval` and the `benchmark_scores` asset both call in here.
"""
