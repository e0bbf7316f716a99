"""zeroforge.assets: Dagster software-defined assets, thin by design.

Each asset module resolves its inputs (configs, resources, upstream assets),
calls one plain library function from `models`, `retrieval`, `evaluation` or
`recipes`, and returns metadata a team wants to see in the UI. No training or
data logic lives here; `orchestration.definitions` wires the assets together.
"""
