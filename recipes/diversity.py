"""The diversity penalty (recipes.md, "Shared pieces"): cluster a batch, subtract each item's cluster share.

A batch of generated questions or queries is grouped into clusters by a
distance and a threshold; each item's penalty is its cluster's size divided
by the batch size, so ten copies of one query cost ten times what a unique
query costs. Two distances are used by Active-Zero:

* BLEU distance `1 - BLEU` between texts (threshold 0.5), from NLTK's
  `sentence_bleu` (smoothing method 1, so short texts with no 4-gram overlap
  still score); BLEU is not symmetric, so the distance averages both directions;
* cosine distance `1 - cos` between L2-normalised image embeddings (threshold 0.1).

Clusters are the connected components of "distance < threshold" (single
linkage), optionally only within items of the same group key (Active-Zero
clusters queries within a query type). The published code uses scikit-learn's
average-linkage agglomerative clustering; single linkage needs no extra
dependency and gives the same clusters whenever near-duplicates form tight
groups, which is what the penalty is for.

    >>> cluster_shares([[0.0, 0.2, 0.9], [0.2, 0.0, 0.9], [0.9, 0.9, 0.0]], threshold=0.5)
    [0.6666666666666666, 0.6666666666666666, 0.3333333333333333]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLEU_THRESHOLD = 0.5
IMAGE_COSINE_THRESHOLD = 0.1


def _tokens(text: str) -> list[str]:
    return " ".join(str(text).lower().split()).split(" ") if str(text).strip() else []


def bleu(hypothesis: str, reference: str) -> float:
    """Sentence BLEU (4-gram, uniform weights, smoothing method 1) of `hypothesis` against one reference."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hyp, ref = _tokens(hypothesis), _tokens(reference)
    if not hyp or not ref:
        return 1.0 if hyp == ref else 0.0
    return float(sentence_bleu([ref], hyp, smoothing_function=SmoothingFunction().method1))


def bleu_distance(a: str, b: str) -> float:
    """1 - BLEU, averaged over both directions so that d(a, b) == d(b, a); identical texts are at 0."""
    if _tokens(a) == _tokens(b):
        return 0.0
    return 1.0 - 0.5 * (bleu(a, b) + bleu(b, a))


def bleu_distance_matrix(texts: Sequence[str]) -> np.ndarray:
    n = len(texts)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            d[i, j] = d[j, i] = bleu_distance(texts[i], texts[j])
    return d


def cosine_distance_matrix(vectors: np.ndarray) -> np.ndarray:
    """1 - cosine similarity between rows (rows are normalised here, so any scale is fine)."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"expected a (n, dim) array of embeddings, got shape {v.shape}")
    v = v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)
    return 1.0 - v @ v.T


def cluster_labels(distances, threshold: float, groups: Sequence | None = None) -> list[int]:
    """Connected components of `distance < threshold` (within equal `groups` keys when given)."""
    d = np.asarray(distances, dtype=np.float64)
    n = d.shape[0]
    if d.shape != (n, n):
        raise ValueError(f"distances must be a square matrix, got shape {d.shape}")
    if groups is not None and len(groups) != n:
        raise ValueError(f"{len(groups)} group keys for {n} items")
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if d[i, j] < threshold and (groups is None or groups[i] == groups[j]):
                parent[find(i)] = find(j)
    roots: dict[int, int] = {}
    return [roots.setdefault(find(i), len(roots)) for i in range(n)]


def cluster_shares(distances, threshold: float, groups: Sequence | None = None) -> list[float]:
    """Each item's cluster size divided by the batch size (the penalty subtracted from its reward)."""
    labels = cluster_labels(distances, threshold, groups)
    n = len(labels)
    sizes = {lab: labels.count(lab) for lab in set(labels)}
    return [sizes[lab] / n for lab in labels]


def text_cluster_shares(texts: Sequence[str], groups: Sequence | None = None, threshold: float = BLEU_THRESHOLD) -> list[float]:
    """BLEU-distance cluster shares of a batch of texts (questions, or queries within their type)."""
    if not texts:
        return []
    return cluster_shares(bleu_distance_matrix(texts), threshold, groups)


def image_cluster_shares(vectors: np.ndarray, threshold: float = IMAGE_COSINE_THRESHOLD) -> list[float]:
    """Embedding cosine-distance cluster shares of a batch of images (the same image twice: one cluster)."""
    if len(vectors) == 0:
        return []
    return cluster_shares(cosine_distance_matrix(vectors), threshold)
