"""MM-Zero's formats: what the Proposer writes, what the Coder is asked, and their parsers.

Proposer output format (text only, no image):

    <caption>two shapes: a red circle and a blue square</caption>
    <type>shapes</type>
    <easy>What color is the circle?
    A. red
    B. blue
    C. green
    D. yellow</easy>
    <easy_answer>A</easy_answer>
    <hard>How many shapes are there?
    A. 1
    B. 2
    C. 3
    D. 4</hard>
    <hard_answer>B</hard_answer>

Coder output: one SVG document (or a fenced ```python block writing out.png).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.formats import format_options
from models.generation import GenerationRequest, InferenceEngine, SamplingParams
from models.warmstart import SupervisedExample
from recipes.core.questioner import MalformedOutput, parse_letter, parse_options
from retrieval.world.svg import scene_svg
from retrieval.world.tasks import make_tasks

PROPOSER_PROMPT = (
    "Imagine a simple image. Write its caption, its content type, an easy question and a hard question "
    "about it, each with four options A-D and the answer."
)
_FIELDS = ("caption", "type", "easy", "easy_answer", "hard", "hard_answer")
_TAGS = re.compile(r"\s*".join(rf"<{f}>(?P<{f}>.*?)</{f}>" for f in _FIELDS), re.DOTALL)


def coder_prompt(caption: str, size: int = 64) -> str:
    return f"Write an SVG program of {size}x{size} pixels that draws: {caption}"


@dataclass(frozen=True)
class Proposal:
    caption: str
    content_type: str
    easy: str
    easy_options: tuple[str, ...]
    easy_answer: str
    hard: str
    hard_options: tuple[str, ...]
    hard_answer: str


def proposer_target(caption: str, content_type: str, easy: tuple[str, list[str], str], hard: tuple[str, list[str], str]) -> str:
    (eq, eo, ea), (hq, ho, ha) = easy, hard
    return (f"<caption>{caption}</caption>\n<type>{content_type}</type>\n"
            f"<easy>{eq}\n{format_options(eo)}</easy>\n<easy_answer>{ea}</easy_answer>\n"
            f"<hard>{hq}\n{format_options(ho)}</hard>\n<hard_answer>{ha}</hard_answer>")


def parse_proposer(text: str) -> Proposal:
    """Parse a Proposer completion or raise MalformedOutput saying why."""
    m = _TAGS.search(text or "")
    if not m:
        raise MalformedOutput("missing or misordered tags: need " + ", ".join(f"<{f}>" for f in _FIELDS))
    caption, ctype = m.group("caption").strip(), " ".join(m.group("type").lower().split())
    if not caption:
        raise MalformedOutput("empty caption")
    if not ctype or len(ctype) > 32:
        raise MalformedOutput(f"content type must be a short non-empty label, found {ctype!r}")
    eq, eo = parse_options(m.group("easy"), "easy")
    ea = parse_letter(m.group("easy_answer"), "easy")
    hq, ho = parse_options(m.group("hard"), "hard")
    ha = parse_letter(m.group("hard_answer"), "hard")
    if " ".join(eq.lower().split()) == " ".join(hq.lower().split()):
        raise MalformedOutput("the easy and the hard question are the same")
    return Proposal(caption, ctype, eq, eo, ea, hq, ho, ha)


def try_parse(text: str) -> Proposal | None:
    try:
        return parse_proposer(text)
    except MalformedOutput:
        return None


def generate_proposals(engine: InferenceEngine, n: int, temperature: float, max_new_tokens: int, seed: int) -> list[str]:
    """n Proposer texts; the prompt is the same every time, so variety comes from sampling alone."""
    n = n if temperature > 0 else 1  # greedy decoding of one prompt gives one text
    outs = engine.generate([GenerationRequest(PROPOSER_PROMPT)] * n,
                           SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    return [t for (t,) in outs]


def mmzero_examples(world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
    """Templated Proposer items and Coder SVG programs from every third world scene with a short SVG."""
    out: list[SupervisedExample] = []
    for wi in list(world_images)[::3]:
        svg = scene_svg(wi)
        tasks = make_tasks(wi, rng)
        # long documents are beyond a tiny model's reach, and every long example pads its whole warm-start batch
        if len(svg) > 400 or len(tasks) < 2:
            continue
        easy, hard = tasks[0], rng.choice([t for t in tasks[1:] if t.question != tasks[0].question] or tasks[1:])
        target = proposer_target(wi.caption, wi.kind, (easy.question, list(easy.options), easy.answer),
                                 (hard.question, list(hard.options), hard.answer))
        out.append(SupervisedExample(PROPOSER_PROMPT, target, [], task_type="mmzero_proposer"))
        out.append(SupervisedExample(coder_prompt(wi.caption, wi.image.width), svg, [], task_type="mmzero_coder"))
    return out
