"""The code location: every asset, job and resource of zeroforge in one `Definitions`.

Loaded by `dagster dev -w workspace.yaml` (`make ui`), by `zeroforge demo`
(which executes `demo_job` in-process on the same instance), and by tests.
Resources are chosen by environment (`assets.resources.resources_from_env`).
"""

from __future__ import annotations

import dagster as dg

from assets.base_model import base_model
from assets.image_pool import image_pool
from assets.resources import resources_from_env

foundation_assets = [base_model, image_pool]

demo_job = dg.define_asset_job(
    "demo_job",
    selection=dg.AssetSelection.assets(*foundation_assets),
    description="Build the embedded base model and the image pool.",
)

defs = dg.Definitions(
    assets=foundation_assets,
    jobs=[demo_job],
    resources=resources_from_env(),
)
