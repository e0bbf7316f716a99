"""The "who is the spy" game of Vision-Zero: prompts, parsers, published rewards, role baseline, Iterative-SPO.

Plain library code for `recipes.visionzero.recipe` (recipes.md, "Vision-Zero"). A game
has N players (4 by default), all the same model; every player sees only its
own image, the spy's differs in a few details (`retrieval.spy_pairs`). Clue
stage: `clue_rounds` rounds, players speak in turn and see all earlier clues.
Decision stage: every player votes for the spy or N/A.

Rewards, as published, then clipped to [-1, 1]:

- civilian vote: +1 correct, -1 wrong (a civilian voting for itself is wrong),
  minus `0.6 * votes_received / (N-1)`. N/A is neither: 0 before the penalty
  (the published formula has no N/A term; `na_vote` makes it a knob);
- spy vote: `1 - votes/(N-1) + 0.5 * misled/(N-1)`, where `misled` counts the
  civilians who voted for another civilian; -1 when the spy votes for itself;
- decision phase (RLVR, verifiable): civilian +1 correct / -0.5 N/A / -1 wrong;
  spy +0.5 for voting a civilian / +0.2 N/A / -1 for exposing itself;
- clue: quality minus `0.6 * votes/(N-1)`. The published "quality score" is not
  pinned down; here it is `1 - ` the largest word overlap (Jaccard) with any
  earlier clue of the game, so repeating a clue says nothing new.

Malformed output (no `<clue>` tags, no `\\boxed{}` vote) scores -1. The role
advantage subtracts a per-role EMA baseline (alpha 0.9) from the clipped
reward: `RoleBaseline`. Iterative-SPO's switching rules are `next_phase`.

    >>> civilian_vote_reward(vote=2, spy=2, received=1, n=4)    # right, but suspected once
    0.8
    >>> spy_vote_reward(vote=0, spy=2, received=1, misled=1, n=4)
    0.8333333333333334
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from PIL import Image

from models.formats import extract_boxed
from models.generation import GenerationRequest, InferenceEngine, SamplingParams

NA = "N/A"
MALFORMED = "malformed"  # a vote that did not parse
CIVILIAN, SPY = "civilian", "spy"
PHASES = ("clue", "decision")

ROLE_TEXT = {
    CIVILIAN: "You are a civilian: the others mostly see your image.",
    SPY: "You are the spy: your image differs from the others in a few details.",
}
_CLUE = re.compile(r"<clue>(.*?)</clue>", re.DOTALL)
_WORD = re.compile(r"[a-z0-9]+")


class MalformedMove(ValueError):
    """A clue or vote that does not follow the format; the message says why."""


# ---------------------------------------------------------------- game state and prompts


@dataclass
class Game:
    """One game: who is the spy, each player's image, the clues in order and the votes (None = N/A)."""

    game_id: str
    spy: int  # 0-based player index
    images: list[Image.Image]
    clues: list[dict] = field(default_factory=list)  # {"round", "player", "text", "raw", "ok", "reason"}
    votes: list = field(default_factory=list)  # per player: int (0-based target), None (N/A) or MALFORMED
    vote_raw: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.images)

    def role(self, player: int) -> str:
        return SPY if player == self.spy else CIVILIAN


def clue_transcript(clues: Sequence[dict]) -> str:
    if not clues:
        return "(no clues yet)"
    return "\n".join(f"player {c['player'] + 1}: {c['text'] if c['ok'] else '(no clue)'}" for c in clues)


def clue_prompt(game: Game, player: int, clues: Sequence[dict] | None = None) -> str:
    clues = game.clues if clues is None else clues
    return (f"Who is the spy: you are player {player + 1} of {game.n}. {ROLE_TEXT[game.role(player)]}\n"
            f"Clues so far:\n{clue_transcript(clues)}\n"
            "Give one short clue about your image as <clue>...</clue>.")


def vote_prompt(game: Game, player: int, clues: Sequence[dict] | None = None) -> str:
    clues = game.clues if clues is None else clues
    return (f"Who is the spy: you are player {player + 1} of {game.n}. {ROLE_TEXT[game.role(player)]}\n"
            f"Clues:\n{clue_transcript(clues)}\n"
            "Which player is the spy? Answer with the player number in \\boxed{}, or \\boxed{N/A}.")


def clue_target(text: str) -> str:
    return f"<clue>{text}</clue>"


def vote_target(vote: int | None) -> str:
    return f"\\boxed{{{NA if vote is None else vote + 1}}}"


def parse_clue(text: str, max_words: int = 30) -> str:
    """The clue inside `<clue>...</clue>`, or MalformedMove saying why."""
    m = _CLUE.search(text or "")
    if not m:
        raise MalformedMove("missing <clue>...</clue>")
    clue = " ".join(m.group(1).split())
    if not clue:
        raise MalformedMove("empty clue")
    if len(clue.split()) > max_words:
        raise MalformedMove(f"clue longer than {max_words} words")
    return clue


def parse_vote(text: str, n: int) -> int | None:
    """0-based player index, or None for N/A; MalformedMove when there is no boxed player number 1..n or N/A."""
    boxed = extract_boxed(text or "")
    if boxed is None:
        raise MalformedMove("missing \\boxed{}")
    b = boxed.strip().lower().removeprefix("player").strip()
    if b in ("n/a", "na", "none"):
        return None
    if not b.isdigit() or not 1 <= int(b) <= n:
        raise MalformedMove(f"vote must be a player number 1-{n} or N/A, found {boxed!r}")
    return int(b) - 1


# ---------------------------------------------------------------- rewards


def clip(x: float) -> float:
    return max(-1.0, min(1.0, x))


def votes_received(votes: Sequence, n: int) -> list[int]:
    """Valid votes each player got from the others (a self-vote is punished elsewhere, not counted here)."""
    got = [0] * n
    for voter, v in enumerate(votes):
        if isinstance(v, int) and not isinstance(v, bool) and v != voter:
            got[v] += 1
    return got


def civilian_vote_reward(vote, spy: int, received: int, n: int, na_vote: float = 0.0, penalty: float = 0.6) -> float:
    if vote == MALFORMED:
        return -1.0
    base = na_vote if vote is None else (1.0 if vote == spy else -1.0)
    return clip(base - penalty * received / (n - 1))


def spy_vote_reward(vote, spy: int, received: int, misled: int, n: int, misled_weight: float = 0.5) -> float:
    if vote == MALFORMED or vote == spy:
        return -1.0
    return clip(1.0 - received / (n - 1) + misled_weight * misled / (n - 1))


def vote_rewards(votes: Sequence, spy: int, na_vote: float = 0.0, penalty: float = 0.6, misled_weight: float = 0.5) -> list[float]:
    """Every player's (clipped) vote reward in the self-play game."""
    n = len(votes)
    got = votes_received(votes, n)
    misled = sum(1 for p, v in enumerate(votes) if p != spy and isinstance(v, int) and v != spy)
    return [spy_vote_reward(v, spy, got[p], misled, n, misled_weight) if p == spy
            else civilian_vote_reward(v, spy, got[p], n, na_vote, penalty) for p, v in enumerate(votes)]


def decision_reward(vote, spy: int, player: int) -> float:
    """RLVR reward of one vote (verifiable: who is the spy)."""
    if vote == MALFORMED:
        return -1.0
    if player == spy:
        return 0.2 if vote is None else (-1.0 if vote == spy else 0.5)
    return -0.5 if vote is None else (1.0 if vote == spy else -1.0)


def clue_quality(clue: str, earlier: Sequence[str]) -> float:
    """1 - the largest word-set Jaccard overlap with an earlier clue (1.0 for the first clue)."""
    words = set(_WORD.findall(clue.lower()))
    best = 0.0
    for e in earlier:
        other = set(_WORD.findall(e.lower()))
        if words or other:
            best = max(best, len(words & other) / len(words | other))
    return 1.0 - best


def clue_reward(quality: float, received: int, n: int, penalty: float = 0.6) -> float:
    return clip(quality - penalty * received / (n - 1))


def outcome(votes: Sequence, spy: int) -> str:
    """"caught" (the spy alone has the most votes), "tie" (shares the most), "escaped", or "no_votes"."""
    got = votes_received(votes, len(votes))
    top = max(got)
    if top == 0:
        return "no_votes"
    if got[spy] < top:
        return "escaped"
    return "caught" if got.count(top) == 1 else "tie"


class RoleBaseline:
    """Per-role EMA baseline (alpha 0.9): advantage = clipped reward - baseline of its role.

    The baseline used for a batch is the one from before it; afterwards it moves
    towards the batch's mean reward of that role: b <- alpha * b + (1 - alpha) * mean.
    Starts at 0; its values are stored with the checkpoint and carried to the next iteration.
    """

    def __init__(self, alpha: float = 0.9, values: dict | None = None):
        self.alpha = alpha
        self.values: dict[str, float] = dict(values or {})

    def advantages(self, roles: Sequence[str], rewards: Sequence[float]) -> list[float]:
        rewards = [clip(r) for r in rewards]
        out = [r - self.values.get(role, 0.0) for role, r in zip(roles, rewards)]
        for role in sorted(set(roles)):
            mine = [r for ro, r in zip(roles, rewards) if ro == role]
            self.values[role] = self.alpha * self.values.get(role, 0.0) + (1 - self.alpha) * sum(mine) / len(mine)
        return out


# ---------------------------------------------------------------- Iterative-SPO


@dataclass
class PhaseConfig:
    """Iterative-SPO switching: "criterion" (paper, default) or "cycle" (released code: fixed step counts)."""

    rule: str = "criterion"
    initial: str = "clue"
    upper: float = 0.8  # decision accuracy at or above this: games are too easy, back to self-play (clue phase)
    lower: float = 0.4  # below this: decisions lag, switch to RLVR on the decision phase
    cycle_steps: int = 20  # fixed cycle: training steps of one phase before switching


@dataclass
class PhaseState:
    phase: str
    steps_in_phase: int = 0
    iteration: int = 1
    switched: str = ""  # why the phase changed at this iteration ("" when it did not)

    def to_dict(self) -> dict:
        return asdict(self)


def next_phase(cfg: PhaseConfig, prev: PhaseState, accuracy: float | None, steps_trained: int) -> PhaseState:
    """The phase of the iteration after `prev`, from its decision accuracy and the steps its active phase trained."""
    if cfg.rule not in ("criterion", "cycle"):
        raise ValueError(f"unknown Iterative-SPO rule {cfg.rule!r}; choose 'criterion' or 'cycle'")
    steps = prev.steps_in_phase + steps_trained
    other = PHASES[1 - PHASES.index(prev.phase)]
    if cfg.rule == "cycle":
        if steps >= cfg.cycle_steps:
            return PhaseState(other, 0, prev.iteration + 1, f"cycle: {steps} >= {cfg.cycle_steps} steps of {prev.phase}")
    elif accuracy is not None:
        if prev.phase == "clue" and accuracy < cfg.lower:
            return PhaseState(other, 0, prev.iteration + 1, f"decision accuracy {accuracy:.3f} < {cfg.lower}")
        if prev.phase == "decision" and accuracy >= cfg.upper:
            return PhaseState(other, 0, prev.iteration + 1, f"decision accuracy {accuracy:.3f} >= {cfg.upper}")
    return PhaseState(prev.phase, steps, prev.iteration + 1, "")


# ---------------------------------------------------------------- batched rollout


def _set_clue(game: Game, rnd: int, player: int, raw: str) -> None:
    try:
        game.clues.append({"round": rnd, "player": player, "text": parse_clue(raw), "raw": raw, "ok": True, "reason": ""})
    except MalformedMove as err:
        game.clues.append({"round": rnd, "player": player, "text": "", "raw": raw, "ok": False, "reason": str(err)})


def play_clues(games: Sequence[Game], engine: InferenceEngine, rounds: int, params: SamplingParams) -> int:
    """The clue stage of many games at once: one generate call per turn, across all games. Returns the calls made."""
    calls = 0
    n = max(g.n for g in games) if games else 0
    for rnd in range(rounds):
        for player in range(n):
            live = [g for g in games if player < g.n]
            seed = None if params.seed is None else params.seed + 1000 * rnd + player
            outs = engine.generate([GenerationRequest(clue_prompt(g, player), [g.images[player]]) for g in live],
                                   SamplingParams(n=1, temperature=params.temperature, top_p=params.top_p,
                                                  max_new_tokens=params.max_new_tokens, seed=seed))
            calls += 1
            for g, (text,) in zip(live, outs):
                _set_clue(g, rnd, player, text)
    return calls


def vote_requests(game: Game, clues: Sequence[dict] | None = None) -> list[GenerationRequest]:
    return [GenerationRequest(vote_prompt(game, p, clues), [game.images[p]]) for p in range(game.n)]


def parse_votes(texts: Sequence[str], n: int) -> list:
    out = []
    for t in texts:
        try:
            out.append(parse_vote(t, n))
        except MalformedMove:
            out.append(MALFORMED)
    return out


def play_votes(games: Sequence[Game], engine: InferenceEngine, params: SamplingParams) -> int:
    """The decision stage of many games: every player of every game votes in one generate call."""
    if not games:
        return 0
    reqs = [r for g in games for r in vote_requests(g)]
    outs = engine.generate(reqs, params)
    i = 0
    for g in games:
        texts = [o[0] for o in outs[i: i + g.n]]
        i += g.n
        g.vote_raw, g.votes = texts, parse_votes(texts, g.n)
    return 1


def play_games(games: Sequence[Game], clue_engine: InferenceEngine, vote_engine: InferenceEngine, rounds: int,
               clue_params: SamplingParams, vote_params: SamplingParams) -> int:
    """Play whole games batched across games; returns the number of generate calls (rounds * N + 1)."""
    return play_clues(games, clue_engine, rounds, clue_params) + play_votes(games, vote_engine, vote_params)


def score_game(game: Game, na_vote: float = 0.0, penalty: float = 0.6, misled_weight: float = 0.5) -> dict:
    """All published rewards of a played game, its outcome and the civilians' decision accuracy."""
    n, spy = game.n, game.spy
    got = votes_received(game.votes, n)
    civ = [v for p, v in enumerate(game.votes) if p != spy]
    earlier: list[str] = []
    clue_rewards = []
    for c in game.clues:
        if c["ok"]:
            clue_rewards.append(clue_reward(clue_quality(c["text"], earlier), got[c["player"]], n, penalty))
            earlier.append(c["text"])
        else:
            clue_rewards.append(-1.0)
    return {
        "vote_rewards": vote_rewards(game.votes, spy, na_vote, penalty, misled_weight),
        "decision_rewards": [decision_reward(v, spy, p) for p, v in enumerate(game.votes)],
        "clue_rewards": clue_rewards,
        "votes_received": got,
        "outcome": outcome(game.votes, spy),
        "decision_accuracy": sum(1 for v in civ if v == spy) / max(1, len(civ)),
        "well_formed_clues": sum(1 for c in game.clues if c["ok"]),
        "malformed_votes": sum(1 for v in game.votes if v == MALFORMED),
        "vote_counts": dict(Counter("N/A" if v is None else str(v if v == MALFORMED else v + 1) for v in game.votes)),
    }
