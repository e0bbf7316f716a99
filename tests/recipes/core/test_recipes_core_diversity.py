"""The shared diversity penalty: BLEU and image-embedding clusters, average linkage, within groups."""

import numpy as np
import pytest

from recipes.core.diversity import bleu_distance, cluster_labels, cluster_shares, image_cluster_shares, text_cluster_shares


def test_cluster_shares_average_linkage_within_groups():
    d = [[0.0, 0.2, 0.9, 0.9], [0.2, 0.0, 0.9, 0.3], [0.9, 0.9, 0.0, 0.9], [0.9, 0.3, 0.9, 0.0]]
    # 0-1 merge at 0.2; item 3 is 0.3 from 1 but 0.9 from 0: its mean distance to {0, 1} is 0.6 > 0.5 (average
    # linkage, the published clustering), so it stays alone, as does item 2
    assert cluster_labels(d, 0.5) == [0, 0, 1, 2]
    assert cluster_shares(d, 0.5) == pytest.approx([0.5, 0.5, 0.25, 0.25])
    assert cluster_shares(d, 0.65) == pytest.approx([0.75, 0.75, 0.25, 0.75])  # 0.6 < 0.65: 3 joins
    assert cluster_shares(d, 0.2) == pytest.approx([0.25] * 4)  # strict "<": 0.2 is not linked at threshold 0.2
    # within groups: item 1 has another type, so it cannot join 0 even at a wide threshold
    assert cluster_shares(d, 0.95, groups=["a", "b", "a", "a"]) == pytest.approx([0.75, 0.25, 0.75, 0.75])


def test_bleu_distance_and_query_clusters():
    a, b = "a bar chart of five bars", "a bar chart of five tall bars"
    assert bleu_distance(a, a) == 0.0 and bleu_distance(a, "two red circles") == pytest.approx(1.0)
    assert bleu_distance(a, b) == pytest.approx(bleu_distance(b, a)) and bleu_distance(a, b) < 0.5
    # the near-duplicates cluster within "charts"; the same text typed "grids" is its own cluster
    shares = text_cluster_shares([a, b, "two red circles", a], groups=["charts", "charts", "shapes", "grids"])
    assert shares == pytest.approx([0.5, 0.5, 0.25, 0.25])


def test_image_clusters_by_cosine_distance():
    v = np.array([[1.0, 0.0], [0.995, 0.0998], [0.0, 1.0], [0.8, 0.6]])  # cos(0,1) = 0.995 -> distance 0.005 < 0.1
    assert image_cluster_shares(v) == pytest.approx([0.5, 0.5, 0.25, 0.25])  # cos(0,3) = 0.8: distance 0.2


