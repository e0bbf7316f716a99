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

    result = train_grpo(parent_dir, out_dir, rows, [accuracy, fmt], hp, reward_weights=[0.9, 0.1])
"""

from __future__ import annotations

import json
import shutil
import time
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

    def series(self, key: str) -> list[float]:
        return [float(h[key]) for h in self.log_history if key in h]


class _WallClock(TrainerCallback):
    """Stop training after `minutes` of wall time (0 disables)."""

    def __init__(self, minutes: float):
        self.minutes = minutes
        self.t0 = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.minutes and (time.monotonic() - self.t0) / 60 > self.minutes:
            control.should_training_stop = True
        return control


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


def last_trainer_checkpoint(trainer_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder (one with trainer_state.json), if any."""
    if not trainer_dir.is_dir():
        return None
    done = [p for p in trainer_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1])) if done else None


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
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=Dataset.from_list(list(rows)),
        processing_class=processor,
        peft_config=peft_config,
        callbacks=[*restore, _WallClock(hp.max_minutes), *callbacks],
    )
    t0 = time.monotonic()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.monotonic() - t0
    final = trainer.model
    if hp.use_lora:
        final = final.merge_and_unload()
    final.save_pretrained(out)
    processor.save_pretrained(out)
    for name in ("zeroforge_build.json",):  # carry the embedded model's build card along
        if (Path(parent_dir) / name).is_file():
            shutil.copy(Path(parent_dir) / name, out / name)
    history = [dict(h) for h in trainer.state.log_history]
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
    }
    (out / "zeroforge_train.json").write_text(json.dumps(card, indent=2, default=str))
    (out / "log_history.json").write_text(json.dumps(history, default=str))
    return GRPOResult(out, int(trainer.state.global_step), seconds, card["resumed_from"], history)
