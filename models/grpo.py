"""GRPO training of one role with TRL's `GRPOTrainer` (composed, never forked).

Every role of every recipe trains through `train_grpo`: a base checkpoint
directory in, a full Hugging Face checkpoint directory out (LoRA adapters are
merged before saving, so the next role or iteration loads it like any model).
Hyperparameters are the typed `GRPOHyperParams`, converted to `GRPOConfig` in
exactly one place (`to_grpo_config`) and saved next to the checkpoint.

Reward functions follow TRL's contract `fn(completions, **columns) ->
list[float]`; the dataset has a conversational `prompt` column, an `image`
column of PIL images (or none for text-only roles) and whatever columns the
rewards read.

Trainer checkpoints are written every `save_steps` under `out_dir/trainer`;
a rerun with the same `out_dir` resumes from the last complete one.

The final checkpoint is published atomically: model files are written to a
staging sibling (`.tmp-<name>-*`), the card `zeroforge_train.json` (with a
manifest of every file's size and sha256) is written last, and the staging
folder replaces `out_dir` in one rename (the `trainer/` folder moves along).
A process killed at any point leaves either the previous complete checkpoint
or no card at all, never a card next to half-written weights.

    result = train_grpo(parent_dir, out_dir, rows, [accuracy, fmt], hp, reward_weights=[0.9, 0.1])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback


@dataclass
class GRPOHyperParams:
    """One role's GRPO settings. Defaults are the papers' (recipes.md "Typical hyperparameters")."""

    steps: int = 20  # optimizer steps per role per iteration (papers: 10-30)
    num_generations: int = 5  # group size n (papers: 4-8)
    prompts_per_step: int = 8  # prompts whose groups form one optimizer step
    learning_rate: float = 1e-6
    beta: float = 0.01  # KL coefficient (papers: 1e-2, low-variance KL)
    epsilon: float = 0.2  # lower clip
    epsilon_high: float = 0.2  # upper clip; Active-Zero's DAPO settings use 0.28
    loss_type: str = "grpo"  # TRL loss types: grpo, dapo, dr_grpo, bnpo, ...
    scale_rewards: str = "group"
    temperature: float = 1.0
    max_completion_length: int = 256
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    precision: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    save_steps: int = 10  # trainer checkpoints for resuming a killed run
    max_minutes: float = 0.0  # 0: no wall-time limit
    # DAPO's dynamic sampling drops groups whose rewards are all equal; TRL (1.16) has no option for it, so
    # `GroupFilterGRPOTrainer` masks those groups' tokens out of the loss (no re-sampling to refill the batch)
    drop_zero_std_groups: bool = False
    seed: int = 0
    extra: dict = field(default_factory=dict)  # any other GRPOConfig field, passed through

    def to_dict(self) -> dict:
        return asdict(self)

    def to_grpo_config(self, output_dir: str | Path, device: str):
        """The single conversion to TRL's config; CPU needs bf16 and gradient checkpointing off."""
        from trl import GRPOConfig

        cuda = device.startswith("cuda")
        bf16 = cuda and torch.cuda.is_bf16_supported() if self.precision == "auto" else self.precision == "bf16"
        # per_device_train_batch_size counts completions, not prompts.
        return GRPOConfig(
            output_dir=str(output_dir),
            max_steps=self.steps,
            per_device_train_batch_size=self.prompts_per_step * self.num_generations,
            num_generations=self.num_generations,
            steps_per_generation=1,
            learning_rate=self.learning_rate,
            beta=self.beta,
            epsilon=self.epsilon,
            epsilon_high=self.epsilon_high,
            loss_type=self.loss_type,
            scale_rewards=self.scale_rewards,
            temperature=self.temperature,
            max_completion_length=self.max_completion_length,
            use_cpu=not cuda,
            bf16=bf16,
            gradient_checkpointing=False,
            logging_steps=1,
            save_strategy="steps",
            save_steps=self.save_steps,
            save_total_limit=2,
            report_to=[],
            seed=self.seed,
            disable_tqdm=False,
            remove_unused_columns=False,
            lr_scheduler_type="constant",
            warmup_steps=0,
            **self.extra,
        )


@dataclass
class GRPOResult:
    out_dir: Path
    steps: int
    seconds: float
    resumed_from: str | None
    log_history: list[dict]
    skipped: str = ""  # why the role did not train (its parent was published unchanged); "" when it trained

    def series(self, key: str) -> list[float]:
        return [float(h[key]) for h in self.log_history if key in h]

    @classmethod
    def load(cls, out_dir: str | Path) -> GRPOResult:
        """The result of a finished training from its checkpoint folder (e.g. one trained in another process)."""
        out = Path(out_dir)
        card = json.loads((out / CARD).read_text())
        history = json.loads((out / "log_history.json").read_text())
        return cls(out, int(card["steps"]), float(card["seconds"]), card.get("resumed_from"), history, card.get("skipped", ""))


def group_filter_trainer():
    """A `GRPOTrainer` subclass that drops groups with no reward variance from the loss (DAPO's online filter).

    After TRL scores a generation batch, a group whose rewards are all equal has advantage exactly 0 for every
    completion; its completion tokens are masked out, so they add neither policy gradient, KL, nor tokens to
    DAPO's normaliser. TRL still logs `frac_reward_zero_std` (the dropped share) before this runs.
    """
    from trl import GRPOTrainer

    class GroupFilterGRPOTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            adv, mask = out["advantages"], out["completion_mask"]
            g = self.num_generations
            if adv.dim() == 1 and adv.numel() % g == 0:
                dropped = (adv.view(-1, g) == 0).all(dim=1).repeat_interleave(g)
                out["completion_mask"] = mask * (~dropped).unsqueeze(1).to(mask.dtype)
                if "num_items_in_batch" in out:
                    out["num_items_in_batch"] = self.accelerator.gather(out["completion_mask"].sum()).sum()
                self._metrics["train"]["frac_groups_dropped"].append(dropped.float().mean().item())
            return out

    return GroupFilterGRPOTrainer


class _WallClock(TrainerCallback):
    """Stop training after `minutes` of wall time (0 disables)."""

    def __init__(self, minutes: float):
        self.minutes = minutes
        self.t0 = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.minutes and (time.monotonic() - self.t0) / 60 > self.minutes:
            control.should_training_stop = True
        return control


CARD = "zeroforge_train.json"


def _trainer_checkpoint_step(path: Path) -> int | None:
    """N for a complete `checkpoint-N` (trainer_state.json parses and says step N; written last by the Trainer)."""
    try:
        n = int(path.name.split("-")[-1])
        state = json.loads((path / "trainer_state.json").read_text())
    except (ValueError, OSError):
        return None
    return n if state.get("global_step") == n else None


class _ResumeWeights(TrainerCallback):
    """Load the resumed checkpoint's weights the way `from_pretrained` does, when training begins.

    `Trainer._load_from_checkpoint` (transformers 5.23) loads `model.safetensors` with a raw, non-strict
    `load_state_dict`; for Qwen2.5-VL the saved names (`model.layers.*`, `visual.*`) differ from the module
    names (`model.language_model.layers.*`, `model.visual.*`), so nothing is loaded and a resumed run would
    silently continue from the parent's weights with the optimizer state of step N. This loads the
    checkpoint through the model class's own key mapping, strictly, in place (optimizer references stay valid).
    """

    def __init__(self, checkpoint: Path, device: str, dtype):
        self.checkpoint, self.device, self.dtype = checkpoint, device, dtype

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        from models.loading import load_vlm

        loaded, _ = load_vlm(self.checkpoint, device=self.device, dtype=self.dtype)
        model.load_state_dict(loaded.state_dict(), strict=True)
        del loaded
        return control


class _DropKeyMismatchWarnings(logging.Filter):
    """The Trainer's "missing/unexpected keys" warnings on resume; `_ResumeWeights` loads those weights."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "keys in the checkpoint model loaded" not in record.getMessage()


def last_trainer_checkpoint(trainer_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder, if any; one killed mid-write (no or truncated state) is skipped."""
    if not trainer_dir.is_dir():
        return None
    done = [(n, p) for p in trainer_dir.glob("checkpoint-*") if (n := _trainer_checkpoint_step(p)) is not None]
    return max(done)[1] if done else None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_manifest(folder: Path, skip: tuple[str, ...] = ("trainer", CARD)) -> dict[str, dict]:
    """{relative path: {bytes, sha256}} of every file under `folder` except `skip` (top-level names)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and rel.parts[0] not in skip:
            out[rel.as_posix()] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    return out


def write_json_atomic(path: Path, data) -> None:
    """Write JSON through a temp file, fsync and rename: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=2, default=str))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def recover_checkpoint_dir(out: Path) -> None:
    """Undo what a kill during `publish_checkpoint` left behind, before training resumes.

    `trainer/` (the resume state) is moved back from a staging folder if the swap did not finish, and
    stale staging / old folders are removed. The final checkpoint itself is never adopted from staging:
    the resumed training reaches the last step again (cheaply) and publishes anew.
    """
    siblings = sorted(out.parent.glob(f".tmp-{out.name}-*")) + sorted(out.parent.glob(f".old-{out.name}-*"))
    for d in siblings:
        if not (out / "trainer").is_dir() and (d / "trainer").is_dir():
            out.mkdir(parents=True, exist_ok=True)
            (d / "trainer").rename(out / "trainer")
        shutil.rmtree(d, ignore_errors=True)


def publish_checkpoint(staging: Path, out: Path) -> None:
    """Make the complete `staging` folder (card written last) the checkpoint at `out`, keeping `out/trainer`."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "trainer").exists():
        (out / "trainer").rename(staging / "trainer")
    old = out.parent / f".old-{out.name}-{uuid.uuid4().hex[:8]}"
    out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def train_grpo(
    parent_dir: str | Path,
    out_dir: str | Path,
    rows: Sequence[dict],
    reward_funcs: Sequence[Callable],
    hp: GRPOHyperParams,
    reward_weights: Sequence[float] | None = None,
    device: str = "cpu",
    metadata: dict | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> GRPOResult:
    """Train the model in `parent_dir` on `rows` and save the result as a full checkpoint in `out_dir`."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from models.loading import default_dtype, load_vlm

    if not rows:
        raise ValueError("train_grpo got an empty dataset: nothing passed the task filters for this role")
    out = Path(out_dir)
    recover_checkpoint_dir(out)
    trainer_dir = out / "trainer"
    dtype = default_dtype(device) if hp.precision == "auto" else (torch.bfloat16 if hp.precision == "bf16" else torch.float32)
    model, processor = load_vlm(parent_dir, device=device, dtype=dtype)
    peft_config = None
    if hp.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    args = hp.to_grpo_config(trainer_dir, device)
    if reward_weights is not None:
        args.reward_weights = list(reward_weights)
    resume = last_trainer_checkpoint(trainer_dir)
    # full-model checkpoints need the key-mapped load; LoRA ones hold adapters, which the Trainer loads itself
    restore = [_ResumeWeights(resume, device, dtype)] if resume and not (resume / "adapter_config.json").exists() else []
    trainer_cls = group_filter_trainer() if hp.drop_zero_std_groups else GRPOTrainer
    trainer = trainer_cls(
        model=model,
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=Dataset.from_list(list(rows)),
        processing_class=processor,
        peft_config=peft_config,
        callbacks=[*restore, _WallClock(hp.max_minutes), *callbacks],
    )
    t0 = time.monotonic()
    quiet, trainer_log = _DropKeyMismatchWarnings(), logging.getLogger("transformers.trainer")
    if restore:
        trainer_log.addFilter(quiet)
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        trainer_log.removeFilter(quiet)
    seconds = time.monotonic() - t0
    final = trainer.model
    if hp.use_lora:
        final = final.merge_and_unload()
    history = [dict(h) for h in trainer.state.log_history]
    accelerator = trainer.accelerator
    if not accelerator.is_main_process:  # under `accelerate launch`: rank 0 publishes, the others wait for it
        accelerator.wait_for_everyone()
        return GRPOResult(out, int(trainer.state.global_step), seconds, str(resume) if resume else None, history)
    staging = out.parent / f".tmp-{out.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        final.save_pretrained(staging)
        # A fresh copy of the parent's processor: training leaves runtime padding/truncation state in the
        # tokenizer, which would make identical checkpoints differ byte-wise (and in their content hash).
        from models.loading import load_processor

        load_processor(parent_dir).save_pretrained(staging)
        for name in ("zeroforge_build.json",):  # carry the embedded model's build card along
            if (Path(parent_dir) / name).is_file():
                shutil.copy(Path(parent_dir) / name, staging / name)
        (staging / "log_history.json").write_text(json.dumps(history, default=str))
        card = {
            "parent": str(parent_dir),
            "hyperparams": hp.to_dict(),
            "reward_functions": [getattr(f, "__name__", type(f).__name__) for f in reward_funcs],
            "reward_weights": list(reward_weights) if reward_weights else None,
            "steps": int(trainer.state.global_step),
            "seconds": seconds,
            "resumed_from": str(resume) if resume else None,
            "dataset_rows": len(rows),
            **(metadata or {}),
            "files": file_manifest(staging),  # what checkpoint_complete and `zeroforge lineage` verify
        }
        write_json_atomic(staging / CARD, card)  # last: the completion marker
        publish_checkpoint(staging, out)
    finally:
        if staging.exists():  # publishing failed part-way: keep the resume state, drop the rest
            if (staging / "trainer").is_dir() and not (out / "trainer").exists():
                out.mkdir(parents=True, exist_ok=True)
                (staging / "trainer").rename(out / "trainer")
            shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    return GRPOResult(out, int(trainer.state.global_step), seconds, card["resumed_from"], history)


def publish_unchanged(parent_dir: str | Path, out_dir: str | Path, hp: GRPOHyperParams, reason: str,
                      metadata: dict | None = None) -> GRPOResult:
    """Publish the parent's weights as this role's checkpoint without training (0 steps), saying why.

    A recipe can pause a role for an iteration (Vision-Zero's Iterative-SPO trains one phase at a time);
    the next iteration still finds a complete checkpoint with a card, published atomically like a trained one.
    """
    parent, out = Path(parent_dir), Path(out_dir)
    recover_checkpoint_dir(out)
    staging = out.parent / f".tmp-{out.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        for p in parent.iterdir():  # model, processor and build card; not the parent's own card, history or trainer state
            if p.is_file() and p.name not in (CARD, "log_history.json", "rewards.png"):
                shutil.copy2(p, staging / p.name)
        (staging / "log_history.json").write_text("[]")
        card = {"parent": str(parent), "hyperparams": hp.to_dict(), "reward_functions": [], "reward_weights": None,
                "steps": 0, "seconds": 0.0, "resumed_from": None, "dataset_rows": 0, "skipped": reason,
                **(metadata or {}), "files": file_manifest(staging)}
        write_json_atomic(staging / CARD, card)
        publish_checkpoint(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return GRPOResult(out, 0, 0.0, None, [], reason)
