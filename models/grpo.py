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

The final checkpoint is published atomically through `models.checkpoint`
(staging folder, card with the file manifest written last, one rename), so a
process killed at any point leaves either the previous complete checkpoint or
no card at all, never a card next to half-written weights. Training is capped
by steps only: the same config and seed give the same weights on a busy or an
idle machine.

    result = train_grpo(parent_dir, out_dir, rows, [accuracy, fmt], hp, reward_weights=[0.9, 0.1])
"""

from __future__ import annotations

import models.compat  # noqa: F401  (the torchvision fallback, before transformers imports torchvision)

# isort: split

import dataclasses
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback, TrainingArguments

from models.checkpoint import BUILD_CARD, HISTORY, TRAINER_DIR, publish_unchanged, read_card, recover_checkpoint_dir, staging_dir, write_card
from models.loading import default_dtype, load_processor, load_vlm

# TRL turns activation ("gradient") checkpointing on by default; it only costs time on a tiny model on CPU.
# transformers >= 5.20 names it `activation_checkpointing` and warns on the old name; older ones know only that.
_NO_CHECKPOINTING = ({"activation_checkpointing": False}
                     if any(f.name == "activation_checkpointing" for f in dataclasses.fields(TrainingArguments))
                     else {"gradient_checkpointing": False})
# TRL (1.16) still calls `model.is_gradient_checkpointing`, which transformers 5.2x deprecates: harmless, and once per
# step it would bury the run's real warnings.
warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)


def _f(default, help: str):
    """A dataclass field with its help text (as TRL's GRPOConfig documents every field)."""
    return field(default=default, metadata={"help": help})


@dataclass
class GRPOHyperParams:
    """One role's GRPO settings. Defaults are the papers' (recipes.md "Typical hyperparameters")."""

    steps: int = _f(20, "Optimizer steps of this role per iteration (papers: 10-30). The only cap: never wall time.")
    num_generations: int = _f(5, "Group size n: completions sampled per prompt (papers: 4-8).")
    prompts_per_step: int = _f(8, "Prompts whose groups form one optimizer step (batch = prompts x group size).")
    learning_rate: float = _f(1e-6, "Adam learning rate (papers: 1e-6; a from-scratch tiny model needs ~1e-4).")
    beta: float = _f(0.01, "KL coefficient against the reference model (papers: 1e-2, low-variance KL).")
    epsilon: float = _f(0.2, "Lower PPO clip.")
    epsilon_high: float = _f(0.2, "Upper PPO clip; Active-Zero's DAPO settings use 0.28.")
    loss_type: str = _f("grpo", "TRL loss type: grpo, dapo, dr_grpo, bnpo, ...")
    scale_rewards: str = _f("group", "TRL reward scaling: group, batch or none.")
    temperature: float = _f(1.0, "Sampling temperature of the rollouts.")
    max_completion_length: int = _f(256, "Tokens per completion at most.")
    use_lora: bool = _f(False, "Train LoRA adapters (merged into the saved checkpoint) instead of all weights.")
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha.")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    precision: str = _f("auto", "auto (bf16 on CUDA, fp32 on CPU), bf16 or fp32.")
    save_steps: int = _f(10, "Trainer checkpoint interval: what a killed run resumes from.")
    drop_zero_std_groups: bool = _f(False, "DAPO's online filter: groups whose rewards are all equal carry no gradient "
                                           "and are masked out of the loss (TRL 1.16 has no option for it).")
    dynamic_sampling: bool = _f(False, "DAPO's dynamic sampling: groups whose rewards are all equal are replaced by groups "
                                       "from further prompts (refilled), so every step trains on groups with a signal.")
    max_refill_rounds: int = _f(3, "Dynamic sampling: extra generation rounds per step at most; what is still missing "
                                   "after them is filled with the zero-variance groups, masked out of the loss.")
    seed: int = _f(0, "Seed of the trainer (sampling, data order).")
    extra: dict = field(default_factory=dict, metadata={"help": "Any other GRPOConfig field, passed through."})

    def to_dict(self) -> dict:
        return asdict(self)

    def global_batch(self) -> int:
        """Completions per optimizer step over all processes (TRL's batch sizes count completions, not prompts)."""
        return self.prompts_per_step * self.num_generations

    def per_device_batch(self, world_size: int | None = None) -> int:
        """This process's share of the global batch: under `accelerate launch` (WORLD_SIZE processes) the global
        batch stays what a single process would use, so the same config gives the same optimisation at any scale."""
        world = world_size or int(os.environ.get("WORLD_SIZE", "1"))
        if self.global_batch() % world:
            raise ValueError(f"the global batch of {self.global_batch()} completions (prompts_per_step {self.prompts_per_step} x "
                             f"num_generations {self.num_generations}) does not split over {world} processes")
        return self.global_batch() // world

    def to_grpo_config(self, output_dir: str | Path, device: str):
        """The single conversion to TRL's config; CPU needs bf16 and gradient checkpointing off."""
        from trl import GRPOConfig

        cuda = device.startswith("cuda")
        bf16 = cuda and torch.cuda.is_bf16_supported() if self.precision == "auto" else self.precision == "bf16"
        return GRPOConfig(
            output_dir=str(output_dir),
            max_steps=self.steps,
            per_device_train_batch_size=self.per_device_batch(),
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
            **_NO_CHECKPOINTING,
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
    cpu_seconds: float = 0.0  # process CPU time of training (all threads): comparable across machine loads

    def series(self, key: str) -> list[float]:
        return [float(h[key]) for h in self.log_history if key in h]

    @classmethod
    def load(cls, out_dir: str | Path) -> GRPOResult:
        """The result of a finished training from its checkpoint folder (e.g. one trained in another process)."""
        out = Path(out_dir)
        card = read_card(out)
        history = json.loads((out / HISTORY).read_text())
        return cls(out, int(card["steps"]), float(card["seconds"]), card.get("resumed_from"), history, card.get("skipped", ""),
                   float(card.get("cpu_seconds", 0.0)))


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


# Per-sample tensors of TRL's generation output, by the side they are padded on.
_PROMPT_KEYS = ("prompt_ids", "prompt_mask", "token_type_ids", "mm_token_type_ids")
_COMPLETION_KEYS = ("completion_ids", "completion_mask", "old_per_token_logps", "ref_per_token_logps",
                    "sampling_per_token_logps", "tool_mask")


def _useful_groups(advantages: torch.Tensor, g: int) -> torch.Tensor:
    """True for groups whose rewards vary: with group-normalised advantages, exactly those with a non-zero one."""
    return (advantages.view(-1, g) != 0).any(dim=1)


def merge_generation_outputs(parts: Sequence[tuple[dict, list[int], bool]], g: int, pad_token_id: int) -> dict:
    """One TRL generation output made of whole groups taken from several: `(output, group indices, masked)`.

    Prompts are left-padded and completions right-padded to the longest among the parts; images follow their
    samples. A part marked `masked` keeps its groups but zeroes their completion mask (they add no loss and no
    tokens to the normaliser), as the plain online filter does.
    """
    from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

    known = {*_PROMPT_KEYS, *_COMPLETION_KEYS, "advantages", "num_items_in_batch", "pixel_values", "image_grid_thw",
             "num_images"}
    for out, _, _ in parts:
        unknown = sorted(k for k in out if k not in known)
        if unknown:
            raise NotImplementedError(f"dynamic sampling cannot merge generation outputs with keys {unknown}")
    split = [split_pixel_values_by_grid(out) for out, _, _ in parts]
    rows = [[i * g + j for i in groups for j in range(g)] for _, groups, _ in parts]
    merged: dict = {}
    first = parts[0][0]
    for key in (*_PROMPT_KEYS, *_COMPLETION_KEYS):
        if key not in first:
            continue
        width = max(out[key].shape[1] for out, _, _ in parts)
        pad = pad_token_id if key.endswith("_ids") and key != "token_type_ids" else 0
        chunks = []
        for (out, _, masked), idx in zip(parts, rows):
            x = out[key][idx]
            fill = x.new_full((x.shape[0], width - x.shape[1]), pad)
            x = torch.cat([fill, x], 1) if key in _PROMPT_KEYS else torch.cat([x, fill], 1)
            if masked and key == "completion_mask":
                x = torch.zeros_like(x)
            chunks.append(x)
        merged[key] = torch.cat(chunks, 0)
    merged["advantages"] = torch.cat([out["advantages"][idx] for (out, _, _), idx in zip(parts, rows)], 0)
    if "pixel_values" in first:
        merged["pixel_values"] = [s["pixel_values"][i] for s, idx in zip(split, rows) for i in idx]
        if "image_grid_thw" in first:
            merged["image_grid_thw"] = [s["image_grid_thw"][i] for s, idx in zip(split, rows) for i in idx]
        merged["num_images"] = [s["num_images"][i] for s, idx in zip(split, rows) for i in idx]
        merged = unsplit_pixel_values_by_grid(merged)
    elif "num_images" in first:
        merged["num_images"] = [out["num_images"][i] for (out, _, _), idx in zip(parts, rows) for i in idx]
    return merged


def dynamic_sampling_trainer():
    """A `GRPOTrainer` subclass with DAPO's dynamic sampling: zero-variance groups are replaced, not just dropped.

    After TRL generates and scores a batch, groups whose rewards are all equal (advantage 0 everywhere) are
    set aside and completions for further prompts are generated and scored, until the batch again holds as
    many groups with reward variance as it has prompts or `max_refill_rounds` rounds have run; any shortfall
    is filled with the set-aside groups, masked out of the loss. Refill prompts come from a seeded stream
    over the training set, independent of TRL's sampler. Deviation from DAPO: DAPO over-samples a whole
    generation batch at a time; this asks for exactly the missing number of prompts per round, which is
    cheaper on a CPU where a generation round is most of a step.

    Logged per step (in the result's log history): `dynamic_sampling/useful_share_sampled` (share of the
    step's first-round groups with reward variance, what the plain online filter would keep),
    `dynamic_sampling/useful_share_trained` (share after refilling), `dynamic_sampling/refilled_share`
    (share of the batch's groups that came from refill prompts) and `dynamic_sampling/extra_prompts`.
    """
    from trl import GRPOTrainer

    class DynamicSamplingGRPOTrainer(GRPOTrainer):
        max_refill_rounds = 3

        def _refill_rows(self, n: int) -> list[dict]:
            if not hasattr(self, "_refill_order"):
                gen = torch.Generator().manual_seed(int(self.args.seed) + 7919)
                self._refill_order, self._refill_pos = torch.randperm(len(self.train_dataset), generator=gen).tolist(), 0
            out = []
            for _ in range(n):
                if self._refill_pos == len(self._refill_order):
                    self._refill_pos = 0
                out.append(dict(self.train_dataset[self._refill_order[self._refill_pos]]))
                self._refill_pos += 1
            return out

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            if not self.model.training:
                return out
            g = self.num_generations
            n_groups = out["advantages"].numel() // g
            keep = _useful_groups(out["advantages"], g)
            parts = [(out, [i for i in range(n_groups) if keep[i]], False)]
            have, extra = len(parts[0][1]), 0
            device = out["advantages"].device
            for _ in range(self.max_refill_rounds):
                # every process runs the same number of rounds (the scoring inside gathers across processes)
                need = int(self.accelerator.gather(torch.tensor([n_groups - have], device=device)).max().item())
                if need <= 0:
                    break
                new = super()._generate_and_score_completions([r for r in self._refill_rows(need) for _ in range(g)])
                useful = _useful_groups(new["advantages"], g)
                take = [i for i in range(need) if useful[i]][: max(0, n_groups - have)]
                parts.append((new, take, False))
                have, extra = have + len(take), extra + need
            refilled = have - len(parts[0][1])
            if have < n_groups:
                parts.append((out, [i for i in range(n_groups) if not keep[i]][: n_groups - have], True))
            merged = merge_generation_outputs(parts, g, self.processing_class.tokenizer.pad_token_id
                                              if hasattr(self.processing_class, "tokenizer") else self.processing_class.pad_token_id)
            merged["num_items_in_batch"] = self.accelerator.gather(merged["completion_mask"].sum()).sum()
            m = self._metrics["train"]
            m["dynamic_sampling/useful_share_sampled"].append(float(keep.float().mean()))
            m["dynamic_sampling/useful_share_trained"].append(have / n_groups)
            m["dynamic_sampling/refilled_share"].append(refilled / n_groups)
            m["dynamic_sampling/extra_prompts"].append(float(extra))
            return merged

    return DynamicSamplingGRPOTrainer

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
        loaded, _ = load_vlm(self.checkpoint, device=self.device, dtype=self.dtype)
        model.load_state_dict(loaded.state_dict(), strict=True)
        del loaded
        return control


class _DropKeyMismatchWarnings(logging.Filter):
    """The Trainer's "missing/unexpected keys" warnings on resume; `_ResumeWeights` loads those weights."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "keys in the checkpoint model loaded" not in record.getMessage()


def restore_is_lora(checkpoint: Path) -> bool:
    """A trainer checkpoint of LoRA adapters (the Trainer restores those itself), not of full weights."""
    return (Path(checkpoint) / "adapter_config.json").exists()


def last_trainer_checkpoint(trainer_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder, if any; one killed mid-write (no or truncated state) is skipped."""
    if not trainer_dir.is_dir():
        return None
    done = [(n, p) for p in trainer_dir.glob("checkpoint-*") if (n := _trainer_checkpoint_step(p)) is not None]
    return max(done)[1] if done else None


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

    if not rows:
        raise ValueError("train_grpo got an empty dataset: nothing passed the task filters for this role")
    out = Path(out_dir)
    if int(os.environ.get("RANK", "0")) == 0:  # one process tidies what a killed publish left (the others only read)
        recover_checkpoint_dir(out)
    trainer_dir = out / TRAINER_DIR
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
    restore = [_ResumeWeights(resume, device, dtype)] if resume and not restore_is_lora(resume) else []
    t0, c0 = time.monotonic(), time.process_time()
    if resume is not None and not restore_is_lora(resume) and _trainer_checkpoint_step(resume) >= hp.steps:
        # Killed after the last step's trainer checkpoint, before publishing: nothing is left to train. (Resuming
        # at max_steps anyway makes the Trainer take one more step under `accelerate launch`.)
        loaded, _ = load_vlm(resume, device=device, dtype=dtype)
        model.load_state_dict(loaded.state_dict(), strict=True)
        final, history = model, json.loads((resume / "trainer_state.json").read_text())["log_history"]
        steps, trainer, trained_config = hp.steps, None, resume / "config.json"
    else:
        trained_config = None
        if hp.dynamic_sampling:
            trainer_cls = dynamic_sampling_trainer()
            trainer_cls.max_refill_rounds = hp.max_refill_rounds
        else:
            trainer_cls = group_filter_trainer() if hp.drop_zero_std_groups else GRPOTrainer
        trainer = trainer_cls(
            model=model,
            reward_funcs=list(reward_funcs),
            args=args,
            train_dataset=Dataset.from_list(list(rows)),
            processing_class=processor,
            peft_config=peft_config,
            callbacks=[*restore, *callbacks],
        )
        quiet, trainer_log = _DropKeyMismatchWarnings(), logging.getLogger("transformers.trainer")
        if restore:
            trainer_log.addFilter(quiet)
        try:
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        finally:
            trainer_log.removeFilter(quiet)
        final = trainer.model.merge_and_unload() if hp.use_lora else trainer.model
        history = [dict(h) for h in trainer.state.log_history]
        steps = int(trainer.state.global_step)
    seconds, cpu_seconds = time.monotonic() - t0, time.process_time() - c0
    if int(os.environ.get("RANK", "0")) != 0:  # under `accelerate launch`: rank 0 publishes, the others wait for it
        if trainer is not None:
            trainer.accelerator.wait_for_everyone()
        return GRPOResult(out, steps, seconds, str(resume) if resume else None, history, cpu_seconds=cpu_seconds)
    with staging_dir(out) as staging:
        final.save_pretrained(staging)
        if trained_config is not None:  # the config as the Trainer wrote it (it sets use_cache=False): same bytes, same hash
            shutil.copy2(trained_config, staging / "config.json")
        # A fresh copy of the parent's processor: training leaves runtime padding/truncation state in the
        # tokenizer, which would make identical checkpoints differ byte-wise (and in their content hash).
        load_processor(parent_dir).save_pretrained(staging)
        if (Path(parent_dir) / BUILD_CARD).is_file():  # carry the embedded model's build card along
            shutil.copy(Path(parent_dir) / BUILD_CARD, staging / BUILD_CARD)
        (staging / HISTORY).write_text(json.dumps(history, default=str))
        card = write_card(staging, {  # last: the completion marker that checkpoint_complete and lineage verify
            "parent": str(parent_dir),
            "hyperparams": hp.to_dict(),
            "reward_functions": [getattr(f, "__name__", type(f).__name__) for f in reward_funcs],
            "reward_weights": list(reward_weights) if reward_weights else None,
            "steps": steps,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "resumed_from": str(resume) if resume else None,
            "dataset_rows": len(rows),
            "processes": int(os.environ.get("WORLD_SIZE", "1")),
            "global_batch": hp.global_batch(),
            **(metadata or {}),
        })
    if trainer is not None:
        trainer.accelerator.wait_for_everyone()
    return GRPOResult(out, steps, seconds, card["resumed_from"], history, cpu_seconds=cpu_seconds)


def skip_training(parent_dir: str | Path, out_dir: str | Path, hp: GRPOHyperParams, reason: str,
                  metadata: dict | None = None) -> GRPOResult:
    """The parent's weights published unchanged as this role's checkpoint (0 steps), with the reason."""
    publish_unchanged(Path(parent_dir), Path(out_dir), {"hyperparams": hp.to_dict(), "reward_functions": [],
                                                         "reward_weights": None, "skipped": reason, **(metadata or {})})
    return GRPOResult(Path(out_dir), 0, 0.0, None, [], reason)
