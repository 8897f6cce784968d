"""Weight sharing: linear-initialised 1-D k-means, index 0 = pruned, centroid re-centring."""

import numpy as np
import pytest

from sparsa.sw.compress.prune import magnitude_mask
from sparsa.sw.compress.share import kmeans_1d, kmeans_share, recentre, shared_weights

SEED = 99


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_at_most_2_to_bits_minus_1_nonzero_values_and_index0_is_pruned(bits):
    print("seed", SEED)
    w = np.random.default_rng(SEED).normal(size=(40, 30))
    mask = magnitude_mask(w, 0.3)
    c, idx = kmeans_share(w, mask, bits)
    assert c.shape == (16,) and c[0] == 0 and idx.dtype == np.uint8
    assert np.array_equal(idx == 0, ~mask)
    used = np.unique(idx[mask])
    assert used.min() >= 1 and used.max() <= (1 << bits) - 1
    assert np.all(c[used] != 0)
    ws = shared_weights(c, idx)
    assert np.unique(ws[mask]).size <= (1 << bits) - 1
    assert np.all(ws[~mask] == 0)
    assert np.all(np.diff(c[1:used.max() + 1]) > 0)      # indices in increasing value order


def test_linear_initialisation_on_separated_values():
    # Values in three tight groups: linear init between min and max puts one centroid per group.
    x = np.array([-1.0, -0.99, 0.0, 0.01, 1.0, 1.01])
    c, label = kmeans_1d(x, 3)
    assert np.allclose(c, [-0.995, 0.005, 1.005])
    assert list(label) == [0, 0, 1, 1, 2, 2]


def test_kmeans_is_deterministic():
    w = np.random.default_rng(SEED).normal(size=(50, 50))
    m = magnitude_mask(w, 0.5)
    a, b = kmeans_share(w, m, 4), kmeans_share(w, m, 4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_zero_mean_cluster_stays_nonzero():
    # One cluster (bits = 1) of symmetric weights averages to exactly 0.0.
    w = np.array([[1.0, -1.0, 2.0, -2.0]])
    c, idx = kmeans_share(w, np.ones_like(w, dtype=bool), 1)
    assert c[1] != 0 and np.all(idx == 1)


def test_recentre_moves_each_centroid_to_its_members_mean():
    c = np.zeros(16)
    c[1:3] = [-1.0, 1.0]
    idx = np.array([[1, 1, 2, 0]], dtype=np.uint8)
    w = np.array([[-1.2, -0.8, 1.5, 0.3]])       # the pruned weight drifted: ignored
    new = recentre(w, idx, c)
    assert new[0] == 0 and new[1] == pytest.approx(-1.0) and new[2] == pytest.approx(1.5)
    assert np.array_equal(shared_weights(new, idx), [[-1.0, -1.0, 1.5, 0.0]])


def test_empty_mask_gives_empty_codebook():
    c, idx = kmeans_share(np.ones((2, 2)), np.zeros((2, 2), bool), 4)
    assert np.all(c == 0) and np.all(idx == 0)


def test_already_shared_weights_are_recovered_exactly():
    # Re-compressing a model retrained with shared weights must not merge its values.
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    values = np.array([-0.9, -0.85, -0.2, 0.3, 0.31, 0.32, 1.5])
    w = rng.choice(values, size=(20, 20)) * (rng.random((20, 20)) < 0.3)
    c, idx = kmeans_share(w, w != 0, 3)
    assert np.array_equal(shared_weights(c, idx), w)


# --- Cross-check against scikit-learn's Lloyd k-means (an independent implementation) ---

def _sklearn_kmeans(x, n):
    """scikit-learn's Lloyd k-means from the same linear initialisation, run to convergence."""
    from sklearn.cluster import KMeans
    init = np.linspace(x.min(), x.max(), n).reshape(-1, 1)
    km = KMeans(n_clusters=n, init=init, n_init=1, max_iter=1000, tol=0.0,
                algorithm="lloyd").fit(x.reshape(-1, 1))
    return km.cluster_centers_.ravel(), km.labels_


@pytest.mark.parametrize("dist", ["normal", "uniform", "bimodal"])
@pytest.mark.parametrize("n", [3, 7, 15])
def test_kmeans_1d_matches_sklearn_lloyd_from_linear_init(dist, n):
    # Same initialisation, same algorithm: both must reach the same fixed point. A quantile
    # initialisation, a single Lloyd step or a missing update step lands elsewhere.
    seed = SEED + n + len(dist)
    print("seed", seed)
    rng = np.random.default_rng(seed)
    x = {"normal": lambda: rng.normal(size=3000),
         "uniform": lambda: rng.uniform(-0.3, 0.5, size=3000),
         "bimodal": lambda: np.concatenate([rng.normal(-1, 0.2, 1500),
                                            rng.normal(0.7, 0.4, 1500)])}[dist]()
    c_ref, label_ref = _sklearn_kmeans(x, n)
    # scikit-learn moves an emptied cluster to a far point where ours keeps it in place; the
    # data sets here never empty one (heavy tails, e.g. Laplace, would).
    assert np.all(np.bincount(label_ref, minlength=n) > 0)
    order = np.argsort(c_ref)                                 # ours are sorted ascending
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    c, label = kmeans_1d(x, n)
    assert c.shape == (n,)
    np.testing.assert_allclose(c, c_ref[order], rtol=0, atol=1e-12)
    assert np.array_equal(label, rank[label_ref])


@pytest.mark.parametrize("bits", [2, 3])
def test_kmeans_share_matches_sklearn_on_a_pruned_layer(bits):
    # Density 0.7 leaves a small gap around zero that linear initialisation's middle
    # centroid still reaches (more centroids would start inside the gap, empty).
    print("seed", SEED)
    n = (1 << bits) - 1
    w = np.random.default_rng(SEED).normal(scale=0.05, size=(64, 48))
    mask = magnitude_mask(w, 0.7)
    c_ref, label_ref = _sklearn_kmeans(w[mask], n)
    assert np.all(np.bincount(label_ref, minlength=n) > 0)
    order = np.argsort(c_ref)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    c, idx = kmeans_share(w, mask, bits)
    np.testing.assert_allclose(c[1:n + 1], c_ref[order], rtol=0, atol=1e-12)
    assert np.all(c[n + 1:] == 0)
    assert np.array_equal(idx[mask], rank[label_ref] + 1)
