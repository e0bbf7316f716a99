"""The Dagster UI on a home with a V-Zero iteration: assets, partitions, checks and a backfill, in real Chromium.

Starts `dagster dev` (webserver + daemon) as a process group on a free
port, asks its GraphQL endpoint for the loop's assets, partitions and check
results, launches a from-failure backfill of a failed iteration through it
(the daemon executes it), then renders the pages in headless Chromium and
saves screenshots (paths printed; under the test's home/ui-screenshots).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.ui import (
    ASSET_KEYS,
    CHECK_EXECUTIONS,
    PARTITIONS,
    Browser,
    Webserver,
    find_chromium,
    launch_backfill,
    ui_screenshots,
    wait_for_backfill,
)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
LOOP_KEYS = {"vzero/questioner_checkpoint", "vzero/task_set", "vzero/solver_checkpoint", "vzero/benchmark_scores"}
# Fails iteration 2 the way a storage outage would (the image pool is unreachable), then restores the pool.
FAIL_ITERATION_2 = """
import shutil, sys
from pathlib import Path
from orchestration.instance import prepare_instance
home = Path(sys.argv[1]); prepare_instance(home)
import dagster as dg
from orchestration.runs import run_iteration
(home / "pool").rename(home / "pool.offline")
result = run_iteration(dg.DagsterInstance.get(), "vzero", 2, {"profile": "smoke"})
shutil.rmtree(home / "pool"); (home / "pool.offline").rename(home / "pool")
sys.exit(0 if not result.success else 1)
"""


def _checks(ui, partition):
    data = ui.graphql(CHECK_EXECUTIONS, {"path": ["vzero", "task_set"], "check": "task_set_is_valid"})
    return [e["status"] for e in data["assetCheckExecutions"] if e["partition"] == partition]


@pytest.mark.skipif(find_chromium() is None, reason="needs chromium (`apt-get install -y chromium`; .ci/run installs it)")
def test_ui_shows_the_loop_and_backfills_a_failed_iteration(tmp_path):
    home = tmp_path / "home"
    if os.environ.get("ZEROFORGE_TEST_SMOKE_FOUNDATION"):  # optional: skip the warm start (see tests/assets/conftest.py)
        for part in ("models", "pool"):
            shutil.copytree(Path(os.environ["ZEROFORGE_TEST_SMOKE_FOUNDATION"]) / part, home / part)
    cli = [sys.executable, "-m", "zeroforge.cli", "--home", str(home), "demo", "--profile", "smoke", "--iterations", "1"]
    subprocess.run(cli, cwd=REPO, check=True, timeout=3600, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-c", FAIL_ITERATION_2, str(home)], cwd=REPO, check=True, timeout=1200,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    with Webserver(home, log=tmp_path / "webserver.log") as ui:
        keys = {"/".join(n["assetKey"]["path"]) for n in ui.graphql(ASSET_KEYS)["assetNodes"]}
        assert LOOP_KEYS | {"base_model", "image_pool", "vzero/leaderboard"} <= keys
        parts = ui.graphql(PARTITIONS, {"path": ["vzero", "task_set"]})["assetNodeOrError"]["partitionKeys"]
        assert parts == ["iter-0001", "iter-0002"]
        # a recipe that never ran has its first iteration declared, so the lineage view shows it missing
        never = ui.graphql(PARTITIONS, {"path": ["mmzero", "task_set"]})["assetNodeOrError"]["partitionKeys"]
        assert never == ["iter-0001"]
        assert "SUCCEEDED" in _checks(ui, "iter-0001")
        assert "SUCCEEDED" not in _checks(ui, "iter-0002")  # iteration 2 failed before its task set

        # The UI's "backfill from failure" for the failed iteration; the daemon of `dagster dev` runs it.
        backfill_id = launch_backfill(ui, "vzero", ["iter-0002"], {"execution": {"config": {"in_process": {}}}})
        assert wait_for_backfill(ui, backfill_id, timeout_s=1800) == "COMPLETED_SUCCESS"
        assert "SUCCEEDED" in _checks(ui, "iter-0002")

        with Browser() as browser:
            shots = ui_screenshots(ui, browser, home / "ui-screenshots", backfill_id=backfill_id)
            # the rendered pages (the UI is a JS app: read after rendering, not the HTML as served)
            browser.open(f"{ui.url}/assets/vzero/task_set?view=partitions", wait_for=["iter-0001", "iter-0002"])
            assert "Materialized (2)" in browser.text()
            browser.open(f"{ui.url}/assets/vzero/task_set?view=checks", wait_for=["task_set_is_valid"])
            dom = browser.dom()
            assert "task_set_is_valid" in dom and "blocking" in dom
    for name, path in shots.items():
        print(f"UI screenshot {name}: {path}")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert set(shots) >= {"asset_graph", "global_lineage", "partition_metadata", "checks", "backfill"}
