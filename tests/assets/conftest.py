"""Smoke homes for the rerun, backfill and lineage tests: the smoke foundation is built once per session.

`smoke_home_factory(name)` makes a fresh zeroforge home (its own Dagster
instance) whose models/ and pool/ are copies of the session's smoke
foundation, then runs the foundation job there (a cache hit: the base model
is content-addressed), so each scenario starts from a clean instance without
repeating the warm start. Making a home activates it ($ZEROFORGE_HOME,
$DAGSTER_HOME); tests sharing a home call `activate(home)` first. The
previous values come back at the end of the session.

Set ZEROFORGE_TEST_SMOKE_FOUNDATION to a home that already holds the smoke
foundation (e.g. one made by `zeroforge --home H demo --profile smoke
--iterations 0`) to copy it instead of building one.
"""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from orchestration.instance import prepare_instance
from orchestration.presets import foundation_run_config

_ENV = ("ZEROFORGE_HOME", "DAGSTER_HOME")


def activate(home: Path) -> dg.DagsterInstance:
    """Point the process at `home` (the loop's resources read $ZEROFORGE_HOME when a step runs)."""
    prepare_instance(home)
    return dg.DagsterInstance.from_config(str(home / "dagster"))


@pytest.fixture(scope="session")
def _restore_env():
    old = {k: os.environ.get(k) for k in _ENV}
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def smoke_foundation(tmp_path_factory, _restore_env):
    from orchestration.runs import run_foundation

    home = tmp_path_factory.mktemp("smoke_foundation")
    if os.environ.get("ZEROFORGE_TEST_SMOKE_FOUNDATION"):
        for part in ("models", "pool"):
            shutil.copytree(Path(os.environ["ZEROFORGE_TEST_SMOKE_FOUNDATION"]) / part, home / part)
    assert run_foundation(activate(home), foundation_run_config("smoke")).success
    return home


@pytest.fixture(scope="session")
def smoke_home_factory(smoke_foundation, tmp_path_factory):
    from orchestration.runs import run_foundation

    def make(name: str, home: Path | None = None) -> tuple[Path, dg.DagsterInstance]:
        home = home or tmp_path_factory.mktemp(name)
        for part in ("models", "pool"):
            shutil.copytree(smoke_foundation / part, home / part)
        instance = activate(home)
        assert run_foundation(instance, foundation_run_config("smoke")).success  # cached base, pool already complete
        return home, instance

    return make


@pytest.fixture(scope="session")
def activate_home(_restore_env):
    """`activate_home(home)` -> the home's instance, with the process pointed at it."""
    return activate
