"""The Searcher's format and the pool search it drives (recipes.md, "Active-Zero").

The Searcher writes `<type>...</type><query>...</query>`; the query is
embedded with the pool's open_clip text tower and searched among the pool's
image embeddings in LanceDB; one of the top 5 is taken at random. Both cluster
shares of the diversity penalty (images by embedding cosine, queries by BLEU
within a type) are computed over one batch of searches.

    >>> parse_searcher("<type>charts</type><query>a bar chart of five bars</query>")
    SearcherOutput(query_type='charts', query='a bar chart of five bars')
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.warmstart import SupervisedExample
from recipes.core.diversity import image_cluster_shares, text_cluster_shares
from recipes.core.questioner import MalformedOutput

SEARCHER_PROMPT = (
    "Find a picture in the image pool to learn from. Name its type (shapes, charts, grids or photo), "
    "then write a search query describing it."
)
QUERY_TYPES = ("shapes", "charts", "grids", "photo")
TOP_K = 5  # the Searcher's image is drawn from the top 5 hits
_SEARCH = re.compile(r"<type>(?P<type>.*?)</type>\s*<query>(?P<query>.*?)</query>", re.DOTALL)


@dataclass(frozen=True)
class SearcherOutput:
    query_type: str
    query: str


def searcher_target(query_type: str, query: str) -> str:
    return f"<type>{query_type}</type>\n<query>{query}</query>"


def parse_searcher(text: str) -> SearcherOutput:
    """Parse a Searcher completion or raise MalformedOutput saying why (missing tags, empty type or query)."""
    m = _SEARCH.search(text or "")
    if not m:
        raise MalformedOutput("missing <type> or <query> tags")
    query_type = " ".join(m.group("type").split()).lower()
    query = " ".join(m.group("query").split())
    if not query:
        raise MalformedOutput("empty query")
    if not query_type:
        raise MalformedOutput("empty type")
    return SearcherOutput(query_type, query)


def searcher_format(out: SearcherOutput) -> float:
    """1 when the type is one the pool has (a well-formed query of another type still searches, for 0)."""
    return 1.0 if out.query_type in QUERY_TYPES else 0.0


@dataclass
class Search:
    """One Searcher completion and what it fetched: parsed query (or error), image, rank and similarity."""

    raw: str
    parsed: SearcherOutput | None
    error: str = ""
    image_id: str = ""
    rank: int = -1
    similarity: float = 0.0
    image_share: float = 0.0
    query_share: float = 0.0


def run_searches(pool, embedder, texts: Sequence[str], rng: random.Random, image, k: int = TOP_K) -> list[Search]:
    """Parse each Searcher text, search its query, take one of the top k at random, and compute both cluster shares.

    Shares are over the well-formed queries of this batch: image clusters by embedding cosine distance < 0.1,
    query clusters by BLEU distance < 0.5 within a query type. `image(id)` reads a pool image.
    """
    out: list[Search] = []
    for text in texts:
        try:
            s = Search(text, parse_searcher(text))
        except MalformedOutput as err:
            out.append(Search(text, None, str(err)))
            continue
        hits = pool.search_text(embedder, s.parsed.query, k=k)
        if not hits:
            s.error = "no image found"
        else:
            s.rank = rng.randrange(len(hits))
            s.image_id, s.similarity = hits[s.rank][0], float(hits[s.rank][1])
        out.append(s)
    found = [s for s in out if s.image_id]
    if found:
        vecs = embedder.embed_images([image(s.image_id) for s in found])
        for s, share in zip(found, image_cluster_shares(vecs)):
            s.image_share = share
        shares = text_cluster_shares([s.parsed.query for s in found], groups=[s.parsed.query_type for s in found])
        for s, share in zip(found, shares):
            s.query_share = share
    return out


def searcher_examples(world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
    """A few Searcher examples (type + the image's caption as the query), for the warm start."""
    # every 8th image, without drawing from `rng`: the other formats' examples stay exactly as they were
    return [SupervisedExample(SEARCHER_PROMPT, searcher_target(wi.kind, wi.caption), [], task_type="activezero_searcher")
            for wi in list(world_images)[::8]]
