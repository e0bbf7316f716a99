"""From a Coder reply to an image, and from an image to the Solver's verdict on both questions.

`render_program` extracts the program (SVG first, a fenced Python block
second) and runs it in `retrieval.render`'s sandbox; it never raises on model
text. `solver_scores` asks the Solver both questions of every rendered item m
times, in one batched vote, and reduces each item to MM-Zero's solvability,
hard-question consistency and "solved at least once".
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

from models.generation import InferenceEngine
from recipes.core.voting import majority_vote, solver_request, vote
from recipes.mmzero.config import MMZeroConfig
from recipes.mmzero.formats import Proposal
from retrieval.render import RenderResult, SandboxLimits, extract_program, render_python, render_svg

RENDER_SOURCE = "mmzero-render"  # the source of every image MM-Zero generates (stored with its iteration)


def render_program(reply: str, cfg: MMZeroConfig):
    """(kind, program, RenderResult) for a Coder reply; never raises on model text."""
    kind, program = extract_program(reply)
    if kind is None and "<svg" in reply.lower():
        # an SVG the Coder did not finish (cut at max tokens) is an SVG with a syntax error, not "not SVG"
        kind, program = "svg", reply[reply.lower().index("<svg"):].strip()
    if kind is None:
        return None, "", RenderResult(False, None, "not_svg", "no SVG document or Python program in the reply", 0.0)
    if kind == "python" and not cfg.allow_python:
        return kind, program, RenderResult(False, None, "not_svg", "a Python program, but this run renders SVG only", 0.0)
    limits = SandboxLimits(wall_seconds=cfg.render_wall_seconds)
    render = render_svg if kind == "svg" else render_python
    return kind, program, render(program, size=cfg.render_size, limits=limits)


def render_id(partition: str, image) -> str:
    """A content-addressed id for a render of this iteration."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return f"mmzero-{partition}-{hashlib.sha256(buf.getvalue()).hexdigest()[:16]}"


@dataclass
class SolverScore:
    solvability: float  # share of easy answers equal to the Proposer's easy answer
    c_hard: float  # majority share of the hard answers
    hard_solved: bool  # the Proposer's hard answer appears at least once

    def triple(self) -> tuple[float, float, int]:
        return self.solvability, self.c_hard, int(self.hard_solved)


def score_from_answers(p: Proposal, easy: Sequence[str | None], hard: Sequence[str | None]) -> SolverScore:
    m = max(1, len(easy))
    _, c_hard = majority_vote(hard)
    return SolverScore(sum(a == p.easy_answer for a in easy) / m, c_hard, any(a == p.hard_answer for a in hard))


def solver_scores(solver: InferenceEngine, renders: Sequence[tuple[Proposal, object]], m: int, max_new_tokens: int,
                  seed: int) -> list[SolverScore]:
    """The Solver's m answers to both questions of every (proposal, image), in one batched vote."""
    reqs = []
    for p, image in renders:
        reqs.append(solver_request(image, p.easy, p.easy_options))
        reqs.append(solver_request(image, p.hard, p.hard_options))
    votes = vote(solver, reqs, m, max_new_tokens=max_new_tokens, seed=seed)
    return [score_from_answers(p, votes[2 * i].answers, votes[2 * i + 1].answers) for i, (p, _) in enumerate(renders)]
