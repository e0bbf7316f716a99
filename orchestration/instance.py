"""The zeroforge home and its Dagster instance: where everything is written, and the instance's settings.

Everything zeroforge writes lives under one home (models, pool, iterations,
lineage, quarantine) and the Dagster instance of that home lives in
`<home>/dagster`, so `zeroforge ui` shows the runs `zeroforge demo` made. The
home is found the way DVC and git find their repository (`resolve_home`):
an explicit `--home`, then `$ZEROFORGE_HOME`, then a `.zeroforge/` folder in
the current directory or one of its parents, then `~/.zeroforge`.

    home, how = resolve_home(None)      # (Path, "a .zeroforge/ folder in /work/checkout")
    prepare_instance(home)              # sets ZEROFORGE_HOME and DAGSTER_HOME, writes dagster.yaml once
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_DIRNAME = ".zeroforge"

DAGSTER_YAML = """\
# Written by `zeroforge` on first use; edit freely, it is not overwritten.
telemetry:
  enabled: false
nux:
  enabled: false  # no "join the community" dialog in the UI
# A failed run is re-executed once from its failed step (the daemon of `zeroforge ui` does it); training
# steps resume from their last trainer checkpoint.
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: true
# A run whose worker process died (OOM-killed, node lost) is marked failed, which triggers the retry above.
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
concurrency:
  # Steps tagged pool "gpu" (training, sampling, evaluation) never run two at once on one machine.
  pools:
    granularity: op
    default_limit: 1
  # Iterations of one recipe depend on each other: queued runs of the same recipe start one at a time,
  # in order, so a backfill of iter-0002..iter-0004 runs them as a chain.
  runs:
    tag_concurrency_limits:
      - key: "zeroforge/loop"
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


def resolve_home(arg: str | os.PathLike | None = None, cwd: Path | None = None) -> tuple[Path, str]:
    """(home, how it was found): --home, then $ZEROFORGE_HOME, then .zeroforge/ here or in a parent, then ~/.zeroforge."""
    if arg:
        return Path(arg).expanduser().resolve(), "--home"
    if os.environ.get("ZEROFORGE_HOME"):
        return Path(os.environ["ZEROFORGE_HOME"]).expanduser().resolve(), "$ZEROFORGE_HOME"
    here = (cwd or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / HOME_DIRNAME).is_dir():
            return d / HOME_DIRNAME, f"a {HOME_DIRNAME}/ folder in {d}"
    return (Path.home() / HOME_DIRNAME).resolve(), "the user default"


def prepare_instance(home: Path) -> Path:
    """Point ZEROFORGE_HOME and DAGSTER_HOME at `home` (before a Dagster instance is opened); returns DAGSTER_HOME."""
    home = Path(home)
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    cfg = dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    os.environ["ZEROFORGE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return dagster_home
