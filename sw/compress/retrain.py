"""Deep Compression's prune-and-retrain loop for scikit-learn's ``MLPClassifier``.

Three phases, each an epoch loop of ``partial_fit`` calls (one pass over the data in
mini-batches, the optimiser's state carried over):

1. train the float network;
2. prune gradually, one density of the schedule after another (e.g. 0.5, 0.3, 0.2, 0.1):
   compute the magnitude (or ESE-balanced) masks, then retrain, re-applying the masks after
   every ``partial_fit`` step so pruned weights stay zero;
3. share each layer's kept weights by linear-initialised k-means, then retrain the shared
   values: after every step each cluster is re-centred on the mean of its trained weights
   and the weights are snapped back to their centroids.

The same loop with PyTorch is in docs/compression.md. Note: sklearn stores ``coefs_[k]`` as
(inputs, outputs), the transpose of sparsa's (rows = outputs, cols = inputs).
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from threadpoolctl import threadpool_limits

from sparsa.sw.model.mlp import FloatLayer
from sparsa.sw.compress.prune import balanced_mask, magnitude_mask
from sparsa.sw.compress.share import kmeans_share, recentre, shared_weights

__all__ = ["RetrainConfig", "RetrainResult", "mlp_layers", "make_classifier", "train_float",
           "prune_retrain", "share_retrain", "deep_compress_mlp", "accuracy"]


@dataclass(frozen=True)
class RetrainConfig:
    """Knobs of the loop.

    ``schedule`` lists the pruning steps: each a density for all layers or a tuple with one
    density per layer. ``pes`` set: ESE load-balanced pruning over that many PEs.
    """
    hidden: tuple = (128,)
    float_epochs: int = 60
    schedule: tuple = (0.5, 0.3, 0.2, 0.1)
    prune_epochs: int = 15
    share_epochs: int = 15
    bits: int = 4
    pes: int = None
    batch_size: int = 64
    lr: float = 1e-3
    alpha: float = 1e-4
    seed: int = 0


@dataclass
class RetrainResult:
    """What the loop produced.

    Attributes
    ----------
    float_layers : list of FloatLayer      after float training
    layers : list of FloatLayer            final weights (shared values) and biases
    shared : list of (centroids (16,), index uint8 (rows, cols))
    masks : list of bool (rows, cols)
    history : list of dict                 per phase: name, density, train accuracy, seconds
    classifier : MLPClassifier             holding the final weights
    """
    float_layers: list
    layers: list
    shared: list
    masks: list
    history: list = field(default_factory=list)
    classifier: object = None


def make_classifier(cfg):
    from sklearn.neural_network import MLPClassifier
    return MLPClassifier(hidden_layer_sizes=cfg.hidden, activation="relu", solver="adam",
                         alpha=cfg.alpha, batch_size=cfg.batch_size, learning_rate_init=cfg.lr,
                         random_state=cfg.seed)


def mlp_layers(clf):
    """The classifier's layers as :class:`FloatLayer` (ReLU on all but the output layer).

    The output layer's softmax is dropped: argmax of the logits is the same prediction.
    """
    n = len(clf.coefs_)
    return [FloatLayer(f"layer{k}", np.array(w.T, dtype=np.float64), np.array(b, dtype=np.float64), k < n - 1)
            for k, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_))]


def accuracy(layers, x, y):
    """Classification accuracy of float layers: argmax of the logits, or for sklearn's
    two-class networks (one logistic output) class 1 when the logit is positive."""
    from sparsa.sw.model.mlp import float_forward
    logits = float_forward(layers, x)
    pred = (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else np.argmax(logits, axis=1)
    return float(np.mean(pred == y))


def _epochs(clf, x, y, epochs, after_step, progress, label):
    """``epochs`` partial_fit passes; ``after_step(clf)`` runs after each one."""
    classes = np.unique(y)
    task = progress.add_task(label, total=epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # sklearn's per-call convergence chatter
        for _ in range(epochs):
            clf.partial_fit(x, y, classes=classes)
            if after_step is not None:
                after_step(clf)
            progress.advance(task)


def train_float(x, y, cfg, progress):
    clf = make_classifier(cfg)
    _epochs(clf, x, y, cfg.float_epochs, None, progress, "float training")
    return clf


def prune_retrain(clf, x, y, cfg, progress):
    """Gradual pruning down ``cfg.schedule``; returns the final masks (sparsa layout)."""
    masks = None
    for step in cfg.schedule:
        masks = []
        for k, w in enumerate(clf.coefs_):
            wt, density = w.T, _layer_density(step, k)
            m = magnitude_mask(wt, density) if cfg.pes is None else balanced_mask(wt, density, cfg.pes)
            masks.append(m)
            w *= m.T                        # in place: the classifier sees the pruned weights

        def reapply(c, masks=masks):
            for w, m in zip(c.coefs_, masks):
                w *= m.T
        _epochs(clf, x, y, cfg.prune_epochs, reapply, progress, f"prune to {_label(step)} + retrain")
    return masks


def _layer_density(step, k):
    """A schedule step is one density for every layer or a tuple of per-layer densities."""
    return float(step[k]) if isinstance(step, (tuple, list)) else float(step)


def _label(step):
    return "/".join(f"{d:g}" for d in step) if isinstance(step, (tuple, list)) else f"{step:g}"


def share_retrain(clf, masks, x, y, cfg, progress):
    """k-means sharing, then centroid tuning by re-centring; returns [(centroids, index)]."""
    shared = []
    for w, m in zip(clf.coefs_, masks):
        centroids, index = kmeans_share(w.T, m, cfg.bits)
        shared.append([centroids, index])
        w[...] = shared_weights(centroids, index).T

    def tune(c):
        for w, s in zip(c.coefs_, shared):
            s[0] = recentre(w.T, s[1], s[0])
            w[...] = shared_weights(s[0], s[1]).T     # snap back; pruned weights back to 0
    _epochs(clf, x, y, cfg.share_epochs, tune, progress, f"share ({cfg.bits}-bit) + tune centroids")
    return [tuple(s) for s in shared]


def _progress(show):
    # Transient: the bars vanish once done; they only ever go to stderr.
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True, disable=not show)


def deep_compress_mlp(x, y, cfg=RetrainConfig(), *, progress=False):
    """Train, prune with retraining and share with centroid tuning an ``MLPClassifier``.

    Parameters
    ----------
    x : float array (n, features)
    y : int array (n,)
    cfg : RetrainConfig
    progress : bool
        Show rich progress bars (on stderr) for the epoch loops.

    Returns
    -------
    RetrainResult
    """
    history = []
    # One BLAS thread: the matrices are tiny, so extra threads only add sync overhead, and
    # they fight the other jobs (pytest-xdist workers, simulators) for the same cores.
    with threadpool_limits(1), _progress(progress) as bar:
        t0 = time.perf_counter()
        clf = train_float(x, y, cfg, bar)
        float_layers = mlp_layers(clf)
        history.append({"phase": "float", "density": 1.0, "train_accuracy": accuracy(float_layers, x, y),
                        "seconds": time.perf_counter() - t0})
        t0 = time.perf_counter()
        masks = prune_retrain(clf, x, y, cfg, bar)
        history.append({"phase": "prune", "density": _label(cfg.schedule[-1]),
                        "train_accuracy": accuracy(mlp_layers(clf), x, y), "seconds": time.perf_counter() - t0})
        t0 = time.perf_counter()
        shared = share_retrain(clf, masks, x, y, cfg, bar)
        layers = mlp_layers(clf)
        history.append({"phase": "share", "density": _label(cfg.schedule[-1]), "train_accuracy": accuracy(layers, x, y),
                        "seconds": time.perf_counter() - t0})
    return RetrainResult(float_layers, layers, shared, masks, history, clf)
