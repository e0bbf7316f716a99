"""Resources: every path and every piece of infrastructure the assets touch.

`ZeroforgeHome` owns the on-disk layout (nothing is written to the working
directory); `ComputeResource` says where models run. Both are chosen by
environment: `ZEROFORGE_HOME` and `ZEROFORGE_DEVICE` set them for the CLI,
the webserver and the tests alike.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import dagster as dg

from models.loading import default_device


def default_home() -> str:
    return os.environ.get("ZEROFORGE_HOME", str(Path.home() / ".zeroforge"))


class ZeroforgeHome(dg.ConfigurableResource):
    """Root of everything zeroforge writes: models, pools, task sets, checkpoints, quarantine."""

    root: str = ""  # empty: $ZEROFORGE_HOME, else ~/.zeroforge

    @property
    def path(self) -> Path:
        return Path(self.root or default_home()).expanduser().resolve()

    def dir(self, *parts: str) -> Path:
        p = self.path.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def base_model_dir(self, fingerprint: str) -> Path:
        """Embedded base models live under the fingerprint of their build configuration."""
        return self.path / "models" / f"base-{fingerprint}"

    def pool_root(self) -> Path:
        return self.dir("pool")

    def quarantine_dir(self, asset: str, partition: str | None = None) -> Path:
        return self.dir("quarantine", asset, *(p for p in [partition] if p))


LAUNCHERS = ("in_process", "subprocess", "accelerate")

# Steps in the "gpu" pool ask Kubernetes for GPUs when a run uses dagster-k8s's k8s_job_executor (one pod per
# step, see docs/kubernetes.md); every other executor ignores this tag. ZEROFORGE_K8S_GPUS sets the count.
GPU_STEP_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {
    "limits": {"nvidia.com/gpu": os.environ.get("ZEROFORGE_K8S_GPUS", "1")}}}}}


class ComputeResource(dg.ConfigurableResource):
    """Where models run: "auto" picks CUDA when present, else CPU.

    `launcher` says how GRPO training steps run: "in_process" (the default: inside the step, as on the CPU
    path), "subprocess" (a child process through Dagster Pipes: logs stream into the run, a crash of the
    trainer is a failed step, not a dead run worker) or "accelerate" (`accelerate launch` through Pipes,
    with `accelerate_args`, e.g. "--multi_gpu --num_processes 8 --mixed_precision bf16"; on a CPU machine
    "--multi_gpu --num_processes 2" starts two gloo processes: accelerate's `--cpu` starts only one). The global
    batch stays the single-process one (`GRPOHyperParams.per_device_batch`). Empty: $ZEROFORGE_LAUNCHER,
    else in_process; `accelerate_args` empty: $ZEROFORGE_ACCELERATE_ARGS.
    """

    device: str = "auto"
    launcher: str = ""
    accelerate_args: str = ""

    def resolved_device(self) -> str:
        return self.device if self.device != "auto" else default_device()

    def resolved_launcher(self) -> str:
        launcher = self.launcher or os.environ.get("ZEROFORGE_LAUNCHER", "") or "in_process"
        if launcher not in LAUNCHERS:
            raise ValueError(f"ComputeResource.launcher must be one of {LAUNCHERS}, got {launcher!r}")
        return launcher

    def training_command(self) -> list[str]:
        """The Pipes child's command for the configured launcher (not used in-process)."""
        if self.resolved_launcher() == "accelerate":
            args = shlex.split(self.accelerate_args or os.environ.get("ZEROFORGE_ACCELERATE_ARGS", ""))
            return [sys.executable, "-m", "accelerate.commands.launch", *args, "-m", "orchestration.pipes_train"]
        return [sys.executable, "-m", "orchestration.pipes_train"]


DEFAULT_BENCHMARKS = "procedural,procedural_yesno,procedural_open"


class BenchmarkSuite(dg.ConfigurableResource):
    """Benchmarks every `benchmark_scores` partition is scored on.

    `benchmarks` reads like the CLI's --bench flags, comma separated:
    "procedural,MathVista=/data/vlmeval,ChartQA=/data/chartqa.parquet"
    (env ZEROFORGE_BENCHMARKS; default: the procedural held-out benchmark in its three answer forms,
    4-option, yes/no and open, the forms public VQA benchmarks use).
    `limit` caps samples per benchmark (0: all), for quick checks.
    """

    benchmarks: str = DEFAULT_BENCHMARKS
    limit: int = 0

    def parsed(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for item in filter(None, (x.strip() for x in self.benchmarks.split(","))):
            name, _, path = item.partition("=")
            out[name.strip()] = path.strip() or None
        if not out:
            raise ValueError("BenchmarkSuite.benchmarks is empty; expected e.g. 'procedural' or 'MathVista=/data/vlmeval'")
        return out


def resources_from_env() -> dict:
    return {
        # root "" reads $ZEROFORGE_HOME when a step runs, not when this module is imported, so one
        # process (a test session, a notebook) can point successive runs at different homes.
        "home": ZeroforgeHome(),
        "compute": ComputeResource(device=os.environ.get("ZEROFORGE_DEVICE", "auto")),
        "benchmarks": BenchmarkSuite(
            benchmarks=os.environ.get("ZEROFORGE_BENCHMARKS", DEFAULT_BENCHMARKS),
            limit=int(os.environ.get("ZEROFORGE_BENCHMARK_LIMIT", "0")),
        ),
    }
