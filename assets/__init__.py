"""zeroforge.assets: Dagster software-defined assets, thin by design.

Each asset module resolves its inputs (configs, resources, upstream assets),
calls one plain library function from `models`, `retrieval`, `evaluation` or
`recipes`, and returns metadata a team wants to see in the UI. No training or
data logic lives here; `orchestration.definitions` wires the assets together.

Known-harmless warnings are filtered here, where the APIs that raise them are
used, so that a real warning stands out in a run's log: Dagster's BetaWarning
for `Output(data_version=...)` (content hashes as data versions) and its
PreviewWarning for partitioned asset checks (every loop check is partitioned).
Both APIs are what the assets are built on; nothing else is filtered.
"""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning, message=r".*data_version.*")
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=r".*partitions_def.*")
