"""The diversity penalty (recipes.md, "Shared pieces"): cluster a batch, subtract each item's cluster share.

A batch of generated questions, queries or captions is grouped into clusters
by a distance and a threshold; each item's penalty is its cluster's size
divided by the batch size, so ten copies of one query cost ten times what a
unique query costs. Active-Zero (queries, questions, images) and MM-Zero
(captions and questions) both use it. Two distances:

* BLEU distance `1 - BLEU` between texts (threshold 0.5), from NLTK's
  `sentence_bleu` (smoothing method 1, so short texts with no 4-gram overlap
  still score); BLEU is not symmetric, so the distance averages both directions;
* cosine distance `1 - cos` between L2-normalised image embeddings (threshold 0.1).

Clusters are average-linkage agglomerative clusters (the published code's
scikit-learn clustering, here scipy's) cut at the threshold, optionally only
within items of the same group key (Active-Zero clusters queries within a
query type).

    >>> cluster_shares([[0.0, 0.2, 0.9], [0.2, 0.0, 0.9], [0.9, 0.9, 0.0]], threshold=0.5)
    [0.6666666666666666, 0.6666666666666666, 0.3333333333333333]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

BLEU_THRESHOLD = 0.5
IMAGE_COSINE_THRESHOLD = 0.1


def _tokens(text: str) -> list[str]:
    return " ".join(str(text).lower().split()).split(" ") if str(text).strip() else []


def bleu(hypothesis: str, reference: str) -> float:
    """Sentence BLEU (4-gram, uniform weights, smoothing method 1) of `hypothesis` against one reference."""
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


def _average_linkage(d: np.ndarray, threshold: float) -> list[int]:
    n = d.shape[0]
    if n <= 1:
        return [0] * n
    # cosine distances of (near-)identical vectors come out as -1e-16: linkage wants exact, symmetric, >= 0
    d = np.clip((d + d.T) / 2, 0.0, None)
    np.fill_diagonal(d, 0.0)
    condensed = squareform(d, checks=False)
    # a merge at distance < threshold joins items; fcluster's criterion is "<= t", hence the tiny margin
    return [int(c) for c in fcluster(linkage(condensed, method="average"), t=threshold - 1e-9, criterion="distance")]


def cluster_labels(distances, threshold: float, groups: Sequence | None = None) -> list[int]:
    """Average-linkage clusters closer than `threshold` (within equal `groups` keys when given), as labels 0..k-1."""
    d = np.asarray(distances, dtype=np.float64)
    n = d.shape[0]
    if d.shape != (n, n):
        raise ValueError(f"distances must be a square matrix, got shape {d.shape}")
    if groups is not None and len(groups) != n:
        raise ValueError(f"{len(groups)} group keys for {n} items")
    keys = list(groups) if groups is not None else [0] * n
    labels: list[tuple] = [()] * n
    for key in dict.fromkeys(keys):
        idx = [i for i in range(n) if keys[i] == key]
        for i, lab in zip(idx, _average_linkage(d[np.ix_(idx, idx)], threshold)):
            labels[i] = (key, lab)
    roots: dict[tuple, int] = {}
    return [roots.setdefault(lab, len(roots)) for lab in labels]


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
