"""The Vision-Zero recipe: "who is the spy" games with Iterative-SPO, as a plug-in over the shared loop.

Roles: the clue phase is the task-maker role `player` (self-play: GRPO on
clue prompts, reward = the clue's role advantage, computed by letting the
previous Solver vote on the game with that clue); the decision phase is the
`solver` (RLVR: the verifiable reward says whether a vote names the true spy).
Iterative-SPO trains one phase per iteration; the other publishes its parent
unchanged (0 steps, with the reason in its metadata). The phase, the role
baselines and the decision accuracy live in the Solver's checkpoint card
("recipe_state"), so iteration N+1 reads what N decided.

The task set is the iteration's curriculum: one row per game (pair images,
clues, votes, every reward, outcome), games without a usable pair or without
enough well-formed clues kept as dropped rows with their reason. Each game's
pair images are stored with the iteration (source "spy_pairs"), never in the
foundation pool, so no later game is built from an earlier game's images.

    recipe = get_recipe("visionzero")
    cfg = recipe.default_config("smoke")   # seconds-long iteration on the tiny model
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence

import great_expectations.expectations as gxe
import pandas as pd

from models.checkpoint import read_card
from models.generation import SamplingParams, build_messages
from models.warmstart import SupervisedExample
from recipes.core.context import IterationContext
from recipes.core.keep import ANY, KeepRule
from recipes.core.recipe import Recipe
from recipes.core.registry import register_recipe
from recipes.core.rewards import completion_text
from recipes.core.types import RoleTraining
from recipes.core.validation import ValidationReport, run_suite
from recipes.visionzero import game as sg
from recipes.visionzero.config import PROFILES, VisionZeroConfig
from recipes.visionzero.report import contact_sheet_markdown, transcript_markdown
from retrieval.spy_pairs import SOURCE as PAIR_SOURCE
from retrieval.spy_pairs import describe_difference, make_pair, pair_image_ids, pair_records, scene_pair
from retrieval.world.shapes import describe


def _card_state(model_dir) -> dict:
    return read_card(model_dir).get("recipe_state") or {}


def phase_state(ctx: IterationContext) -> sg.PhaseState:
    """This iteration's Iterative-SPO phase, from the previous Solver's card (iteration 1: the initial phase)."""
    cfg: VisionZeroConfig = ctx.config
    rs = _card_state(ctx.parents["solver"])
    if not rs.get("phase"):
        return sg.PhaseState(cfg.phase.initial, 0, ctx.iteration, "initial phase")
    return sg.next_phase(cfg.phase, sg.PhaseState(**rs["phase"]), rs.get("decision_accuracy"), int(rs.get("steps_trained", 0)))


def make_games(ctx: IterationContext, ids: Sequence[str], salt: str):
    """(games, pairs, failures): a game per source image whose pair could be built; failures keep their reason."""
    cfg: VisionZeroConfig = ctx.config
    rng = ctx.rng(salt)
    games, pairs, failures = [], [], []
    for i, image_id in enumerate(ids):
        try:
            pair = make_pair(ctx.images.record(image_id), random.Random(rng.random()))
        except ValueError as err:
            failures.append((image_id, str(err)))
            continue
        spy = rng.randrange(cfg.n_players)
        images = [pair.spy if p == spy else pair.civilian for p in range(cfg.n_players)]
        games.append(sg.Game(f"{ctx.partition}-{salt}-{i:05d}", spy, images))
        pairs.append(pair)
    return games, pairs, failures


class ClueReward:
    """Clue-phase reward in TRL's contract: the clue's role advantage after the previous Solver votes on the game.

    For each completion, the player's clue replaces its clue in the pre-played game (the others' clues
    stay as they were: a counterfactual of one move), every player votes (greedy, all completions of a
    step in one generate call), and the clue scores `quality - 0.6 * votes/(N-1)`, clipped, minus the
    EMA baseline of the player's role. Malformed clues score -1 before the baseline.
    """

    __name__ = "visionzero_clue_advantage"

    def __init__(self, games: dict, vote_engine, cfg: VisionZeroConfig, baselines: dict | None = None):
        self.games, self.engine, self.cfg = games, vote_engine, cfg
        self.vote_params = SamplingParams(n=1, temperature=0.0, max_new_tokens=cfg.vote_max_new_tokens)
        self.baseline = sg.RoleBaseline(cfg.ema_alpha, baselines)
        self.stats = {"completions": 0, "malformed": 0, "raw_sum": 0.0}

    def __call__(self, completions, game_id, player, round, **_) -> list[float]:
        raws, roles, pending = [], [], []
        for i, (c, gid, p, rnd) in enumerate(zip(completions, game_id, player, round)):
            game = self.games[gid]
            roles.append(game.role(p))
            raws.append(-1.0)
            try:
                text = sg.parse_clue(completion_text(c))
            except sg.MalformedMove:
                self.stats["malformed"] += 1
                continue
            clues = [dict(x, text=text, ok=True) if (x["round"], x["player"]) == (rnd, p) else x for x in game.clues]
            earlier = [x["text"] for x in clues if x["ok"] and (x["round"], x["player"]) < (rnd, p)]
            pending.append((i, game, p, clues, sg.clue_quality(text, earlier)))
        if pending:
            reqs = [r for _, game, _, clues, _ in pending for r in sg.vote_requests(game, clues)]
            outs = self.engine.generate(reqs, self.vote_params)
            k = 0
            for i, game, p, _, quality in pending:
                votes = sg.parse_votes([o[0] for o in outs[k: k + game.n]], game.n)
                k += game.n
                got = sg.votes_received(votes, game.n)
                raws[i] = sg.clue_reward(quality, got[p], game.n, self.cfg.vote_penalty)
        self.stats["completions"] += len(completions)
        self.stats["raw_sum"] += sum(raws)
        return self.baseline.advantages(roles, raws)

    def summary(self) -> dict:
        n = max(1, self.stats["completions"])
        return {"clue_completions": self.stats["completions"], "clue_malformed_rate": self.stats["malformed"] / n,
                "clue_mean_raw_reward": self.stats["raw_sum"] / n,
                **{f"baseline_{k}": v for k, v in self.baseline.values.items()}}


class DecisionReward:
    """Decision-phase (RLVR) reward in TRL's contract: the verifiable vote reward minus the role's EMA baseline."""

    __name__ = "visionzero_decision_advantage"

    def __init__(self, alpha: float = 0.9, baselines: dict | None = None):
        self.baseline = sg.RoleBaseline(alpha, baselines)

    def __call__(self, completions, spy, player, n_players, **_) -> list[float]:
        votes = sg.parse_votes([completion_text(c) for c in completions], max(n_players))
        raws = [sg.decision_reward(v, s, p) for v, s, p in zip(votes, spy, player)]
        roles = [sg.SPY if p == s else sg.CIVILIAN for s, p in zip(spy, player)]
        return self.baseline.advantages(roles, raws)


def _game_row(ctx: IterationContext, i: int, game, pair, score: dict, rule: KeepRule, phase: str) -> dict:
    civ_id, spy_id = pair_image_ids(pair)
    votes = ["N/A" if v is None else (v if v == sg.MALFORMED else f"player {v + 1}") for v in game.votes]
    ranked = Counter(v for v in votes if v.startswith("player")).most_common()
    # the most-voted player, None when nobody voted or the top is tied
    top = ranked[0][0] if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]) else None
    row = {
        "task_id": f"{ctx.partition}-{i:05d}", "iteration": ctx.iteration, "image_id": civ_id, "spy_image_id": spy_id,
        "source_image_id": pair.source_id, "pair_kind": pair.kind, "difference": json.dumps(pair.difference, sort_keys=True),
        "difference_text": describe_difference(pair.kind, pair.difference), "spy": game.spy + 1, "n_players": game.n,
        "clues": json.dumps(game.clues), "question": sg.clue_transcript(game.clues),
        "options": [f"player {p + 1}" for p in range(game.n)], "answers": votes, "vote_raw": list(game.vote_raw),
        "majority": top, "c": ranked[0][1] / game.n if top else 0.0,
        "vote_rewards": score["vote_rewards"], "decision_rewards": score["decision_rewards"], "clue_rewards": score["clue_rewards"],
        "outcome": score["outcome"], "decision_accuracy": score["decision_accuracy"], "well_formed_clues": score["well_formed_clues"],
        "raw": "", "phase": phase, "meta": "{}",
    }
    enough = rule.decide_one(row) == "kept"
    row.update(kept=enough, reason="kept" if enough else "malformed",
               detail="" if enough else f"{score['well_formed_clues']} well-formed clues < {rule.bands[ANY][0]:g}")
    return row


@register_recipe("visionzero")
class VisionZero(Recipe):
    """Clue phase (player, self-play GRPO) and decision phase (solver, RLVR), alternated by Iterative-SPO."""

    roles = ("player", "solver")
    config_class = VisionZeroConfig
    profiles = PROFILES
    drop_reasons = ("no_pair",)
    generated_sources = (PAIR_SOURCE,)
    description = "Vision-Zero: 'who is the spy' games on image pairs; clue self-play and decision RLVR, by Iterative-SPO."

    def keep_rule(self, cfg: VisionZeroConfig) -> KeepRule:
        """A game is kept when at least `min_well_formed_clues` of its clues were well formed (no band on c)."""
        return KeepRule({ANY: (float(cfg.min_well_formed_clues), float("inf"))}, column="well_formed_clues")

    def warm_start_formats(self):
        return {"visionzero": visionzero_examples}

    # ---- clue phase (task maker "player")
    def role_training(self, role: str, ctx: IterationContext) -> RoleTraining:
        if role != "player":
            raise ValueError(f"Vision-Zero trains task-maker role 'player', not {role!r}")
        cfg: VisionZeroConfig = ctx.config
        state = phase_state(ctx)
        baselines = _card_state(ctx.parents["player"]).get("baselines", {})
        meta = {"phase": state.to_dict(), "baselines": baselines}
        if state.phase != "clue":
            return RoleTraining([], [], skip_reason=f"Iterative-SPO phase is '{state.phase}': the clue phase does not train", metadata=meta)
        games, _, _ = make_games(ctx, ctx.sample_image_ids(cfg.task_maker_images, "clue-train"), "clue-train")
        # the parent player pre-plays every turn; training rows are last-round turns, each a counterfactual of one move
        sg.play_clues(games, ctx.engine(ctx.parents["player"]), cfg.clue_rounds,
                      SamplingParams(temperature=cfg.clue_temperature, max_new_tokens=cfg.clue_max_new_tokens, seed=cfg.seed + ctx.iteration))
        last = cfg.clue_rounds - 1
        rows = []
        for g in games:
            for p in range(g.n):
                before = [c for c in g.clues if (c["round"], c["player"]) < (last, p)]
                rows.append({"prompt": build_messages(sg.clue_prompt(g, p, before), 1), "image": g.images[p],
                             "game_id": g.game_id, "player": p, "round": last})
        reward = ClueReward({g.game_id: g for g in games}, ctx.engine(ctx.parents["solver"]), cfg, baselines)
        meta["baselines"] = reward.baseline.values  # the card is written after training: it stores the updated baselines
        return RoleTraining(rows, [reward], [1.0], stats=reward.stats, metadata=meta)

    def build_task_set(self, ctx: IterationContext, maker_dirs: dict) -> pd.DataFrame:
        """Play `images_per_iteration` games, batched across games, and return one row per game."""
        cfg: VisionZeroConfig = ctx.config
        rule = self.keep_rule(cfg)
        phase = phase_state(ctx).phase
        games, pairs, failures = make_games(ctx, ctx.sample_image_ids(cfg.images_per_iteration, "games"), "games")
        ctx.images.add([r for p in pairs for r in pair_records(p)])  # with the iteration; idempotent on a rerun
        seed = cfg.seed + ctx.iteration
        sg.play_games(games, ctx.engine(maker_dirs["player"]), ctx.engine(ctx.parents["solver"]), cfg.clue_rounds,
                      SamplingParams(temperature=cfg.clue_temperature, max_new_tokens=cfg.clue_max_new_tokens, seed=seed),
                      SamplingParams(temperature=0.0, max_new_tokens=cfg.vote_max_new_tokens))
        rows = []
        for i, (g, pair) in enumerate(zip(games, pairs)):
            score = sg.score_game(g, cfg.na_vote, cfg.vote_penalty, cfg.misled_weight)
            rows.append(_game_row(ctx, i, g, pair, score, rule, phase))
        seen = set()
        for r in rows:  # the same pair twice in one iteration teaches nothing new
            if r["kept"] and r["image_id"] in seen:
                r["kept"], r["reason"], r["detail"] = False, "duplicate", "same pair as an earlier game"
            seen.add(r["image_id"])
        for j, (image_id, why) in enumerate(failures):
            rows.append({"task_id": f"{ctx.partition}-x{j:04d}", "iteration": ctx.iteration, "image_id": image_id, "spy_image_id": "",
                         "source_image_id": image_id, "pair_kind": "", "difference": "{}", "difference_text": "", "spy": 0,
                         "n_players": cfg.n_players, "clues": "[]", "question": "", "options": [], "answers": [], "vote_raw": [],
                         "majority": None, "c": 0.0, "vote_rewards": [], "decision_rewards": [], "clue_rewards": [],
                         "outcome": "", "decision_accuracy": 0.0, "well_formed_clues": 0, "kept": False, "reason": "no_pair",
                         "detail": why, "raw": "", "phase": phase, "meta": "{}"})
        return pd.DataFrame(rows)

    # ---- decision phase (solver, RLVR)
    def solver_training(self, ctx: IterationContext, task_set: pd.DataFrame) -> RoleTraining:
        cfg: VisionZeroConfig = ctx.config
        state = phase_state(ctx)
        played = task_set[task_set["reason"] != "no_pair"]
        accuracy = float(played["decision_accuracy"].mean()) if len(played) else None
        active_hp = cfg.solver if state.phase == "decision" else cfg.role_hp("player")
        meta = {"phase": state.to_dict(), "decision_accuracy": accuracy, "steps_trained": active_hp.steps,
                "baselines": _card_state(ctx.parents["solver"]).get("baselines", {})}
        kept = task_set[task_set["kept"]]
        if state.phase != "decision":
            return RoleTraining([], [], skip_reason=f"Iterative-SPO phase is '{state.phase}': the decision phase does not train", metadata=meta)
        if kept.empty:
            return RoleTraining([], [], skip_reason="no kept games to train the decision phase on", metadata=meta)
        rows = []
        for _, t in kept.iterrows():
            civ, spy_img = ctx.image(t["image_id"]), ctx.image(t["spy_image_id"])
            spy = int(t["spy"]) - 1
            game = sg.Game(t["task_id"], spy, [spy_img if p == spy else civ for p in range(int(t["n_players"]))], json.loads(t["clues"]))
            for p in range(game.n):
                rows.append({"prompt": build_messages(sg.vote_prompt(game, p), 1), "image": game.images[p],
                             "spy": spy, "player": p, "n_players": game.n})
        reward = DecisionReward(cfg.ema_alpha, meta["baselines"])
        meta["baselines"] = reward.baseline.values
        return RoleTraining(rows, [reward], [1.0], metadata=meta)

    # ---- task set gate and metadata
    def validate_task_set(self, df: pd.DataFrame, cfg: VisionZeroConfig, resolvable) -> ValidationReport:
        """Games, not questions: images resolvable, spy in range, one vote per player, the declared keep rule, unique pairs."""
        required = ["task_id", "image_id", "spy_image_id", "spy", "n_players", "clues", "answers", "outcome", "kept", "reason",
                    "well_formed_clues"]
        missing = [c for c in required if c not in df.columns]
        if missing:
            return ValidationReport(False, [{"expectation": "expect_table_columns_to_match_set", "column": "", "success": False,
                                             "unexpected_count": len(missing), "examples": missing}], len(df))
        data = df.copy()
        played = data["reason"] != "no_pair"
        data["images_resolvable"] = [bool(resolvable(a)) and (not p or bool(resolvable(b)))
                                     for a, b, p in zip(data["image_id"], data["spy_image_id"], played)]
        data["spy_in_range"] = [(1 <= s <= n) if p else True for s, n, p in zip(data["spy"], data["n_players"], played)]
        data["votes_per_player"] = [len(a) == n if p else True for a, n, p in zip(data["answers"], data["n_players"], played)]
        data["kept_count"] = data["kept"].astype(int)
        kept = {"row_condition": "kept==True", "condition_parser": "pandas"}
        low, _ = self.keep_rule(cfg).bands[ANY]
        return run_suite(data, [
            gxe.ExpectColumnValuesToBeUnique(column="task_id"),
            gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=list(self.reasons(cfg))),
            gxe.ExpectColumnValuesToBeInSet(column="images_resolvable", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="spy_in_range", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="votes_per_player", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="outcome", value_set=["caught", "tie", "escaped", "no_votes"], **kept),
            gxe.ExpectColumnValuesToBeBetween(column="well_formed_clues", min_value=low, **kept),
            gxe.ExpectColumnValuesToBeUnique(column="image_id", **kept),
            gxe.ExpectColumnSumToBeBetween(column="kept_count", min_value=1),
        ], len(df))

    def task_set_metadata(self, df: pd.DataFrame, ctx: IterationContext) -> dict:
        cfg: VisionZeroConfig = ctx.config
        played = df[df["reason"] != "no_pair"]
        return {
            "phase": str(df["phase"].iloc[0]) if len(df) else phase_state(ctx).phase,
            "games": int(len(played)),
            "decision_accuracy": float(played["decision_accuracy"].mean()) if len(played) else 0.0,
            "outcomes": {k: int(v) for k, v in played["outcome"].value_counts().items()},
            "pair_kinds": {k: int(v) for k, v in played["pair_kind"].value_counts().items()},
            "well_formed_clue_rate": float(played["well_formed_clues"].sum() / max(1, len(played) * cfg.n_players * cfg.clue_rounds)),
            "transcripts": transcript_markdown(df, ctx.image, cfg.transcripts_rendered),
            "contact_sheet": contact_sheet_markdown(df, ctx.image, cfg.transcripts_rendered),
        }


def visionzero_examples(world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
    """A few templated clue and vote examples on shapes pairs (one of each per 4 shapes images)."""
    out: list[SupervisedExample] = []
    shapes = [wi for wi in world_images if wi.kind == "shapes" and wi.scene["objects"]][::4]
    for wi in shapes:
        pair = scene_pair(wi.scene, random.Random(rng.random()), wi.id, op="recolor")
        n = 4
        spy = rng.randrange(n)
        game = sg.Game(wi.id, spy, [pair.spy if p == spy else pair.civilian for p in range(n)])
        objs = wi.scene["objects"]
        spy_objs = [dict(o, color=pair.difference["to"]) if k == pair.difference["index"] else o for k, o in enumerate(objs)]
        for p in range(n):  # each clue names one object of the player's own image
            o = (spy_objs if p == spy else objs)[pair.difference["index"] if rng.random() < 0.5 else rng.randrange(len(objs))]
            game.clues.append({"round": 0, "player": p, "text": f"a {describe(o, False)}", "raw": "", "ok": True, "reason": ""})
        speaker = rng.randrange(n)
        before = game.clues[:speaker]
        target = game.clues[speaker]["text"]
        out.append(SupervisedExample(sg.clue_prompt(game, speaker, before), sg.clue_target(target), [game.images[speaker]],
                                     task_type="visionzero_clue"))
        voter = rng.choice([p for p in range(n) if p != spy])
        out.append(SupervisedExample(sg.vote_prompt(game, voter), sg.vote_target(spy), [game.images[voter]], task_type="visionzero_vote"))
    return out
