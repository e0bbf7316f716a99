"""Does label-free GRPO improve the Solver, which lever makes it, and how does it compare to true labels?

Three commands, all on one base model directory (a warm-started embedded model, or any
Qwen2.5-VL checkpoint that answers the `models.formats` Solver prompts):

  headroom   inference only, on labeled VALIDATION questions: greedy accuracy, sampled accuracy,
             maj@m over samples of the clean image and over label-preserving views
             (test-time augmentation), and the pseudo-label accuracy inside and outside each band.
             Label-free RL can only help where the vote beats the single answer.
  loop       label-free iterations: unlabeled images (the "unlabeled" split, new images every
             iteration) -> questions (the world's templates, or the V-Zero Questioner of the base
             with --questioner) -> m votes -> band filter -> Solver GRPO through
             `models.grpo.train_grpo`; then the same questions and steps with the world's true
             labels (the control). Every model is scored greedy on the same split's questions, with
             paired bootstrap intervals against the base.
  (DAPO's dynamic sampling: run `loop --iterations 1` with and without `--dynamic-sampling` and
  read `dynamic_sampling/useful_share_*` in the JSON; TRL's own zero-std share averages over the
  refill rounds too.)

Choose on `--split validation`; report on `--split test` (held-out, never used to choose).
Every accuracy has n and a Wilson 95% interval; every difference a paired bootstrap 95% interval
(questions resampled together). Phases report CPU seconds (`time.process_time`, all threads), which
do not depend on machine load; wall seconds and the load average are printed beside them.

    .venv/bin/python bench/efficacy.py headroom --base DIR --split validation
    .venv/bin/python bench/efficacy.py loop --base DIR --split test --iterations 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# Python puts bench/ first on sys.path, where bench/retrieval.py would shadow the `retrieval` package:
# drop it and import the shared helpers as bench._common from the repository root.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
import numpy as np  # noqa: E402

from bench import _common  # noqa: E402
from evaluation.stats import Accuracy, bootstrap_interval  # noqa: E402
from models.formats import extract_answer, normalize_answer, read_reply, solver_prompt  # noqa: E402
from models.generation import GenerationRequest, SamplingParams, TransformersEngine, build_messages  # noqa: E402
from retrieval.world.augment import ViewConfig, kind_of_image_id, view  # noqa: E402
from retrieval.world.splits import split_images  # noqa: E402
from retrieval.world.tasks import ASKERS, MIXES, TaskMix, make_tasks  # noqa: E402

# Heavy imports stay local so that --help stays quick: models.loading (transformers), models.grpo (TRL)
# and anything under recipes (importing one recipe module imports every recipe).


# ---------------------------------------------------------------- questions


@dataclass
class Question:
    """One 4-option question about one image; `answer` is the true letter (None when the scene cannot tell)."""

    image_id: str
    image: object
    task_type: str
    question: str
    options: list[str]
    answer: str | None
    prompt: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.prompt = self.prompt or solver_prompt(self.question, self.options)


def template_questions(images, seed: int, mix) -> list[Question]:
    """The world's own 4-option questions about `images` (a perfect Questioner drawing from the mix)."""
    rng = random.Random(seed)
    return [Question(wi.id, wi.image, t.task_type, t.question, list(t.options), t.answer)
            for wi in images for t in make_tasks(wi, rng, mix.only("mc") if mix is not None else None)]


def scene_answers(wi, draws: int = 40) -> dict[str, str]:
    """question text -> true answer text, for every template question the world asks about `wi`."""
    every = TaskMix(tuple((t, 3.0) for t in ASKERS), (("open", 1.0),))
    out: dict[str, str] = {}
    for k in range(draws):
        for t in make_tasks(wi, random.Random(k), every):
            out[" ".join(t.question.lower().split())] = t.answer_text
    return out


def questioner_questions(engine, images, seed: int, temperature: float = 0.7, max_new_tokens: int = 128):
    """Questions the V-Zero Questioner writes about `images`, with true letters where the scene can tell.

    Returns (questions, stats): malformed outputs are counted, never used.
    """
    from recipes.core.questioner import QUESTIONER_PROMPT, MalformedOutput, parse_questioner

    reqs = [GenerationRequest(QUESTIONER_PROMPT, [wi.image]) for wi in images]
    outs = engine.generate(reqs, SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    qs, stats = [], Counter()
    for wi, (text,) in zip(images, outs):
        try:
            q = parse_questioner(text)
        except MalformedOutput:
            stats["malformed"] += 1
            continue
        truth = scene_answers(wi).get(" ".join(q.question.lower().split()))
        options = list(q.options)
        answer = "ABCD"[options.index(truth)] if truth in options else None
        stats["answerable" if answer else ("known_question_answer_not_offered" if truth else "unknown_question")] += 1
        qs.append(Question(wi.id, wi.image, _guess_type(q.question), q.question, options, answer,
                           meta={"a_fast": q.fast_answer}))
    stats["generated"] = len(images)
    return qs, dict(stats)


def _guess_type(question: str) -> str:
    q = question.lower()
    for key, t in (("what color", "color"), ("what shape", "shape"), ("where is", "relation"), ("tallest", "chart_max"),
                   ("highest", "chart_max"), ("shortest", "chart_min"), ("lowest", "chart_min"), ("value", "chart_value"),
                   ("row", "grid_row"), ("cells", "grid_count"), ("how many", "count")):
        if key in q:
            return t
    return "other"


# ---------------------------------------------------------------- answering and voting


def engine_for(model_dir, batch_size: int = 64):
    from models.loading import load_vlm

    model, proc = load_vlm(model_dir, device="cpu")
    return TransformersEngine(model, proc, batch_size=batch_size)


def answers(engine, qs: list[Question], n: int, temperature: float, seed: int, images=None, max_new_tokens: int = 10):
    """n answers (letters or None) per question; `images` replaces each question's image (e.g. a view)."""
    reqs = [GenerationRequest(q.prompt, [im if im is not None else q.image])
            for q, im in zip(qs, images if images is not None else [None] * len(qs))]
    outs = engine.generate(reqs, SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    return [[read_reply(r, q.prompt) for r in rs] for q, rs in zip(qs, outs)]


def open_answers(engine, qs: list[Question], n: int, temperature: float, seed: int, max_new_tokens: int = 10):
    """n answers per question asked *without* its options (open form), mapped to the option they name (else None)."""
    reqs = [GenerationRequest(solver_prompt(q.question, None, "open"), [q.image]) for q in qs]
    outs = engine.generate(reqs, SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    got = []
    for q, rs in zip(qs, outs):
        texts = [normalize_answer(o) for o in q.options]
        row = []
        for r in rs:
            value, _ = extract_answer(r, None, "open")
            row.append("ABCD"[texts.index(value)] if value in texts else None)
        got.append(row)
    return got


def votes(engine, qs, m: int, temperature: float, n_views: int, seed: int, view_cfg=None, include_clean: bool = True,
          open_votes: int = 0):
    """m answers per question: from the clean image only (n_views = 0), or spread over label-preserving views.

    With views, each of `n_views` views (plus the clean image when `include_clean`) is answered
    m // (n_views + include_clean) times; temperature 0 means one greedy answer per view. With
    `open_votes`, that many more answers come from the question asked without its options (votes
    across answer formats), each mapped to the option it names.
    """
    cfg = view_cfg or ViewConfig()
    sources = ([None] if include_clean or n_views == 0 else []) + list(range(n_views))
    per = 1 if temperature <= 0 else max(1, m // len(sources))
    out = [[] for _ in qs]
    for s in sources:
        images = None if s is None else [view(q.image, hash_seed(q, seed, s), cfg, kind_of_image_id(q.image_id)) for q in qs]
        got = answers(engine, qs, per, temperature, seed + 17 * (s if s is not None else -1), images)
        for acc, a in zip(out, got):
            acc += a
    if open_votes:
        t = temperature if temperature > 0 else 0.0
        got = open_answers(engine, qs, open_votes if t > 0 else 1, t, seed + 5)
        for acc, a in zip(out, got):
            acc += a
    return out


def hash_seed(q: Question, seed: int, k: int) -> int:
    return zlib.crc32(f"{q.image_id}|{q.question}|{seed}|{k}".encode())


def majority(ans: list) -> tuple[str | None, float]:
    from recipes.core.voting import majority_vote

    return majority_vote(ans)


# ---------------------------------------------------------------- statistics


def acc(flags) -> dict:
    flags = [bool(f) for f in flags]
    return Accuracy(sum(flags), len(flags)).to_dict()


def fmt(d: dict) -> str:
    return f"{100 * d['accuracy']:.1f} [{100 * d['ci95'][0]:.1f}, {100 * d['ci95'][1]:.1f}] (n={d['n']})"


def paired(a, b, seed: int = 0) -> list[float]:
    """Mean of b - a over paired questions (points) and its 95% bootstrap interval."""
    diffs = np.array([int(y) - int(x) for x, y in zip(a, b)], dtype=float)
    lo, hi = bootstrap_interval(len(diffs), lambda idx: diffs[idx].mean(), n_resamples=2000, seed=seed)
    return [round(100 * float(diffs.mean()), 2), round(100 * lo, 2), round(100 * hi, 2)]


def fmt_diff(d) -> str:
    return f"{d[0]:+.1f} [{d[1]:+.1f}, {d[2]:+.1f}]"


class Clock:
    """CPU and wall seconds of named phases."""

    def __init__(self):
        self.phases: dict[str, dict] = {}

    def __call__(self, name: str):
        clock = self

        class _Phase:
            def __enter__(self):
                self.c, self.w = time.process_time(), time.monotonic()

            def __exit__(self, *exc):
                p = clock.phases.setdefault(name, {"cpu_s": 0.0, "wall_s": 0.0})
                p["cpu_s"] += time.process_time() - self.c
                p["wall_s"] += time.monotonic() - self.w

        return _Phase()


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---------------------------------------------------------------- headroom


def greedy_flags(engine, qs):
    got = answers(engine, qs, 1, 0.0, 0)
    return [a[0] == q.answer for a, q in zip(got, qs)], [a[0] for a in got]


def open_form(qs: list[Question]) -> list[Question]:
    """The questions whose task type the world also asks openly (what `procedural_open` scores)."""
    return [q for q in qs if q.answer is not None and "open" in ASKERS.get(q.task_type, ("", ()))[1]]


def open_flags(engine, qs: list[Question]) -> list[bool]:
    """Greedy answers to the questions asked without their options: right when the answer names the true option."""
    return [a[0] == q.answer for a, q in zip(open_answers(engine, qs, 1, 0.0, 0), qs)]


def cmd_headroom(args) -> dict:
    mix = load_mix(args.mix)
    qs = template_questions(split_images(args.split, args.images, seed=args.offset), args.seed, mix)
    engine = engine_for(args.base)
    clock = Clock()
    with clock("greedy"):
        g_ok, g_ans = greedy_flags(engine, qs)
    report = {"n": len(qs), "greedy": acc(g_ok), "greedy_valid": acc([a is not None for a in g_ans]), "arms": {}}
    print(f"{len(qs)} {args.split} questions; greedy {fmt(report['greedy'])}; valid {fmt(report['greedy_valid'])}")
    bands = [tuple(b) for b in json.loads(args.bands)]
    view_cfg = ViewConfig(**json.loads(args.view_cfg))
    for spec in args.arms:
        t, m, v, *rest = spec.split(",")
        t, m, v, o = float(t), int(m), int(v), int(rest[0]) if rest else 0
        with clock(spec):
            vs = votes(engine, qs, m, t, v, args.seed, view_cfg, open_votes=o)
        labels = [majority(a) for a in vs]
        maj_ok = [lab == q.answer for (lab, _), q in zip(labels, qs)]
        # ties broken by the greedy answer: the vote's accuracy as an answer, not as a label
        tb_ok = [(lab if lab is not None else ga) == q.answer for (lab, _), ga, q in zip(labels, g_ans, qs)]
        sampled = [sum(x == q.answer for x in a) / len(a) for a, q in zip(vs, qs)]
        arm = {"temperature": t, "m": m, "views": v, "open_votes": o, "majority": acc(maj_ok), "maj_minus_greedy": paired(g_ok, maj_ok),
               "maj_tiebreak_minus_greedy": paired(g_ok, tb_ok),
               "sampled_accuracy": round(sum(sampled) / len(sampled), 4),
               "valid_share": round(sum(x is not None for a in vs for x in a) / sum(len(a) for a in vs), 4),
               "label_differs_from_greedy": round(sum(lab != ga for (lab, _), ga in zip(labels, g_ans)) / len(qs), 4),
               "bands": {}}
        # where the vote disagrees with greedy, who is right?
        diff = [(lab == q.answer, ga == q.answer) for (lab, _), ga, q in zip(labels, g_ans, qs) if lab != ga and lab is not None]
        arm["when_vote_differs"] = {"n": len(diff), "vote_right": sum(a for a, _ in diff), "greedy_right": sum(b for _, b in diff)}
        for lo, hi in bands:
            inside = [ok for ok, (lab, c) in zip(maj_ok, labels) if lab is not None and lo <= c <= hi]
            outside = [ok for ok, (lab, c) in zip(maj_ok, labels) if lab is not None and not lo <= c <= hi]
            g_in = [g for g, (lab, c) in zip(g_ok, labels) if lab is not None and lo <= c <= hi]
            # what training on the kept questions can change: where the label differs from greedy, who is right
            d_in = [(lab == q.answer, ga == q.answer) for (lab, c), ga, q in zip(labels, g_ans, qs)
                    if lab is not None and lo <= c <= hi and lab != ga]
            arm["bands"][f"{lo}-{hi}"] = {"inside": acc(inside), "outside": acc(outside), "greedy_inside": acc(g_in),
                                         "kept_share": round(len(inside) / len(qs), 3),
                                         "differs": {"n": len(d_in), "label_right": sum(a for a, _ in d_in),
                                                     "greedy_right": sum(b for _, b in d_in)}}
        report["arms"][spec] = arm
        print(f"T={t} m={m} views={v} open={o}: maj {fmt(arm['majority'])}, maj-greedy {fmt_diff(arm['maj_minus_greedy'])} "
              f"(ties to greedy {fmt_diff(arm['maj_tiebreak_minus_greedy'])}), "
              f"sampled {100 * arm['sampled_accuracy']:.1f}, valid {arm['valid_share']:.2f}, differs {arm['when_vote_differs']}; "
              + "; ".join(f"band {k}: in {fmt(b['inside'])} out {fmt(b['outside'])} kept {b['kept_share']} differs {b['differs']}"
                          for k, b in arm["bands"].items()),
              flush=True)
    report["phases"] = clock.phases
    report["load"] = loadavg()
    return report


# ---------------------------------------------------------------- the loop


def load_mix(name: str):
    if name.startswith("{"):
        return TaskMix.from_dict(json.loads(name))
    return MIXES[name]


def grpo_rows(kept, use_truth: bool, noisy_views: int, view_cfg, seed: int, open_twins: float = 0.0) -> list[dict]:
    """Solver GRPO rows; with `noisy_views` > 0 each question appears once per view of its image (Noisy Student).

    With `open_twins` > 0 that share of the questions also trains asked without options, the target option's
    text as the label (`recipes.core.loop.open_twin`, what the loop's `open_twin_share` does)."""
    from recipes.core.loop import open_twin, takes_twin

    rows = []
    for q, label in kept:
        target = q.answer if use_truth else label
        if target is None:
            continue
        images = [q.image] if noisy_views == 0 else [
            view(q.image, hash_seed(q, seed, 100 + k), view_cfg, kind_of_image_id(q.image_id)) for k in range(noisy_views)]
        twin = open_twin(q.question, q.options, target) if takes_twin(f"{q.image_id}|{q.question}", open_twins, seed) else None
        for im in images:
            rows.append({"prompt": build_messages(q.prompt, 1), "image": im, "pseudo_label": target})
            if twin:
                rows.append({"prompt": build_messages(twin[0], 1), "image": im, "pseudo_label": twin[1]})
    random.Random(seed).shuffle(rows)
    return rows


def label_questions(engine, qs, args, view_cfg, seed):
    vs = votes(engine, qs, args.m, args.temperature, args.views, seed, view_cfg, open_votes=args.open_votes)
    labeled = []
    for q, a in zip(qs, vs):
        lab, c = majority(a)
        labeled.append((q, lab, c))
    return labeled


def run_iterations(args, base: Path, work: Path, mix, hp, view_cfg, clock, eval_qs, base_ok, base_open_ok) -> dict:
    from models.grpo import train_grpo
    from recipes.core.rewards import choice_format, solver_accuracy

    arms = ["label_free", "true_label"] if not args.no_control else ["label_free"]
    parents = {a: base for a in arms}
    out = {a: [] for a in arms}
    for it in range(1, args.iterations + 1):
        images = split_images("unlabeled", args.images, seed=args.offset + it)
        labeler = {}
        for arm in arms:
            if arm == "true_label" and args.control_questions == "label_free":
                continue  # questions and kept set are those of the label-free arm (same questions, same steps)
            with clock(f"iter{it}/{arm}/questions+votes"):
                eng = engine_for(parents[arm])
                if args.questioner:
                    qs, qstats = questioner_questions(eng, images, args.seed + it, args.questioner_temperature)
                else:
                    qs, qstats = template_questions(images, args.seed + it, mix), {}
                labeled = label_questions(eng, qs, args, view_cfg, args.seed + 31 * it)
                del eng
            labeler[arm] = (qs, qstats, labeled)
        qs, qstats, labeled = labeler["label_free"]
        lo, hi = args.band
        kept = [(q, lab) for q, lab, c in labeled if lab is not None and lo <= c <= hi]
        known = [(q, lab) for q, lab in kept if q.answer is not None]
        pl_in = [lab == q.answer for q, lab in known]
        pl_out = [lab == q.answer for q, lab, c in labeled if lab is not None and q.answer is not None and not lo <= c <= hi]
        info = {"questions": len(qs), "questioner": qstats, "kept": len(kept),
                "pseudo_label_in_band": acc(pl_in), "pseudo_label_outside_band": acc(pl_out),
                "kept_by_type": dict(Counter(q.task_type for q, _ in kept))}
        print(f"iteration {it}: {len(qs)} questions {qstats or ''}; kept {len(kept)} in band [{lo}, {hi}]; "
              f"pseudo-labels right {fmt(info['pseudo_label_in_band'])} in band, {fmt(info['pseudo_label_outside_band'])} outside",
              flush=True)
        for arm in arms:
            use_truth = arm == "true_label"
            arm_kept = kept if not use_truth or args.control_questions == "label_free" else None
            rows = grpo_rows(arm_kept, use_truth, args.noisy_views, view_cfg, args.seed + it, args.open_twins)
            if not rows:
                why = (f"none of the {len(kept)} kept questions has a true answer the world knows" if use_truth and kept
                       else "nothing kept in the band")
                raise SystemExit(f"iteration {it} {arm}: no training rows ({why})")
            with clock(f"iter{it}/{arm}/train"):
                res = train_grpo(parents[arm], work / f"{arm}-{it}", rows, [solver_accuracy, choice_format], hp,
                                 reward_weights=[0.9, 0.1])
            with clock(f"iter{it}/{arm}/eval"):
                eng = engine_for(work / f"{arm}-{it}")
                ok, ans = greedy_flags(eng, eval_qs)
                open_ok = open_flags(eng, open_form(eval_qs))
                del eng
            rec = {**info, "rows": len(rows), "greedy": acc(ok), "gain_vs_base": paired(base_ok, ok),
                   "valid": acc([a is not None for a in ans]), "train_cpu_s": round(res.cpu_seconds, 1),
                   "train_wall_s": round(res.seconds, 1), "cpu_s_per_step": round(res.cpu_seconds / max(1, res.steps), 2),
                   "steps": res.steps, "reward": res.series("reward"),
                   "frac_reward_zero_std": res.series("frac_reward_zero_std"),
                   "useful_share_trained": res.series("dynamic_sampling/useful_share_trained"),
                   "useful_share_sampled": res.series("dynamic_sampling/useful_share_sampled"),
                   "refilled_share": res.series("dynamic_sampling/refilled_share"),
                   "by_type": by_type(eval_qs, ok), "flags": [int(x) for x in ok],
                   "open": acc(open_ok), "open_gain_vs_base": paired(base_open_ok, open_ok),
                   "open_flags": [int(x) for x in open_ok]}
            if it > 1:
                rec["gain_vs_previous"] = paired(out[arm][-1]["flags"], ok)
            out[arm].append(rec)
            parents[arm] = work / f"{arm}-{it}"
            print(f"  {arm:10s} iter {it}: greedy {fmt(rec['greedy'])}  gain vs base {fmt_diff(rec['gain_vs_base'])}  "
                  f"open {fmt(rec['open'])} gain {fmt_diff(rec['open_gain_vs_base'])}  "
                  f"train {rec['train_cpu_s']} cpu-s ({rec['cpu_s_per_step']}/step, wall {rec['train_wall_s']}s)  "
                  f"zero-std {mean(rec['frac_reward_zero_std']):.2f}  load {loadavg()}", flush=True)
    return out


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def by_type(qs, ok) -> dict:
    t = defaultdict(list)
    for q, o in zip(qs, ok):
        t[q.task_type].append(o)
    return {k: acc(v) for k, v in sorted(t.items())}


def hyperparams(args):
    from models.grpo import GRPOHyperParams

    return GRPOHyperParams(num_generations=args.group, steps=args.steps, prompts_per_step=args.prompts_per_step,
                           learning_rate=args.lr, beta=args.beta, temperature=args.train_temperature,
                           max_completion_length=10, save_steps=100_000, seed=args.seed,
                           dynamic_sampling=args.dynamic_sampling, loss_type=args.loss_type)


def cmd_loop(args) -> dict:
    mix = load_mix(args.mix)
    view_cfg = ViewConfig(**json.loads(args.view_cfg))
    clock = Clock()
    eval_qs = template_questions(split_images(args.split, args.eval_images, seed=args.eval_offset), args.seed + 5, mix)
    with clock("eval/base"):
        eng = engine_for(args.base)
        base_ok, base_ans = greedy_flags(eng, eval_qs)
        base_open_ok = open_flags(eng, open_form(eval_qs))
        del eng
    print(f"{args.split}: {len(eval_qs)} questions; base greedy {fmt(acc(base_ok))}; "
          f"the same asked openly {fmt(acc(base_open_ok))}", flush=True)
    hp = hyperparams(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)  # --work keeps every checkpoint
        work.mkdir(parents=True, exist_ok=True)
        arms = run_iterations(args, Path(args.base), work, mix, hp, view_cfg, clock, eval_qs, base_ok, base_open_ok)
    report = {"machine": _common.machine(), "args": vars(args), "hyperparams": hp.to_dict(), "eval_n": len(eval_qs),
              "base": {"greedy": acc(base_ok), "by_type": by_type(eval_qs, base_ok), "open": acc(base_open_ok)}, "arms": arms,
              "phases": clock.phases, "load": loadavg()}
    if "true_label" in arms:
        lf, tl = arms["label_free"][-1]["gain_vs_base"][0], arms["true_label"][-1]["gain_vs_base"][0]
        report["gain_ratio"] = round(lf / tl, 3) if tl > 0 else None
        print(f"gain ratio label-free / true-label after {args.iterations} iterations: {report['gain_ratio']}")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base", required=True, help="base model directory")
    common.add_argument("--split", default="validation", choices=["validation", "test"])
    common.add_argument("--mix", default="base", help="a name in retrieval.world.tasks.MIXES or a TaskMix as JSON")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--view-cfg", default="{}", help="retrieval.world.augment.ViewConfig fields as JSON")
    common.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    common.add_argument("--json")

    h = sub.add_parser("headroom", parents=[common])
    h.add_argument("--images", type=int, default=250)
    h.add_argument("--offset", type=int, default=0,
                   help="split seed of the images (retrieval.world.splits: each seed in [0, 1000) gives disjoint images)")
    h.add_argument("--arms", nargs="+", default=["1.0,8,0", "0.7,8,0", "0,8,8", "1.0,8,4"],
                   help="temperature,m,views[,open votes] per arm (views 0: the clean image only; temperature 0: greedy per view)")
    h.add_argument("--bands", default="[[0.3, 0.8], [0.5, 0.9], [0.6, 1.0]]")

    lp = sub.add_parser("loop", parents=[common])
    lp.add_argument("--iterations", type=int, default=2)
    lp.add_argument("--images", type=int, default=120, help="new unlabeled images per iteration")
    lp.add_argument("--offset", type=int, default=0,
                    help="iteration i draws the unlabeled split's seed offset + i; keep it small (offset + iterations < 1000)")
    lp.add_argument("--eval-images", type=int, default=250)
    lp.add_argument("--eval-offset", type=int, default=0, help="split seed of the evaluation images, in [0, 1000)")
    lp.add_argument("--questioner", action="store_true", help="questions from the base's V-Zero Questioner, not the templates")
    lp.add_argument("--questioner-temperature", type=float, default=0.7)
    lp.add_argument("--m", type=int, default=8)
    lp.add_argument("--temperature", type=float, default=1.0, help="voting temperature (0: greedy per view)")
    lp.add_argument("--views", type=int, default=0, help="label-preserving views in the vote (0: clean image only)")
    lp.add_argument("--open-votes", type=int, default=0, help="extra votes from the question asked without options")
    lp.add_argument("--noisy-views", type=int, default=0, help="train on this many views per kept question (Noisy Student)")
    lp.add_argument("--work", help="keep every trained checkpoint here (default: a temporary folder)")
    lp.add_argument("--open-twins", type=float, default=0.0,
                    help="share of kept questions also trained asked openly, the label's option text as the target")
    lp.add_argument("--band", type=float, nargs=2, default=[0.3, 0.8])
    lp.add_argument("--steps", type=int, default=30)
    lp.add_argument("--group", type=int, default=8)
    lp.add_argument("--prompts-per-step", type=int, default=8)
    lp.add_argument("--lr", type=float, default=1e-4)
    lp.add_argument("--beta", type=float, default=0.0)
    lp.add_argument("--loss-type", default="dapo")
    lp.add_argument("--train-temperature", type=float, default=1.0)
    lp.add_argument("--dynamic-sampling", action="store_true")
    lp.add_argument("--no-control", action="store_true")
    lp.add_argument("--control-questions", default="label_free", choices=["label_free"],
                    help="the control trains on the label-free arm's kept questions with their true labels")
    args = ap.parse_args()
    # split seeds lie in [0, 1000) (retrieval.world.splits.split_seed): refuse before any model is loaded
    seeds = {"--offset": [args.offset]} if args.cmd == "headroom" else {
        "--offset": [args.offset + 1, args.offset + args.iterations], "--eval-offset": [args.eval_offset]}
    for opt, vals in seeds.items():
        if not all(0 <= v < 1000 for v in vals):
            ap.error(f"{opt}: split seeds {vals} must lie in [0, 1000) (loop: iteration i uses --offset + i)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0, c0 = time.monotonic(), time.process_time()
    report = cmd_headroom(args) if args.cmd == "headroom" else cmd_loop(args)
    report["total"] = {"cpu_s": time.process_time() - c0, "wall_s": time.monotonic() - t0}
    print(f"total {report['total']['cpu_s']:.0f} cpu-s, {report['total']['wall_s']:.0f} s wall; load {loadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
