"""Float MLPs: layers, their checks and forward pass; :func:`sparsa.sw.model.importer.load_mlp` loads them from files.

Accepted inputs
    * ``.npy``: one 2-D float or int matrix, rows = outputs, cols = inputs. A single layer
      named ``layer0`` with a zero bias.
    * ``.onnx``: an MLP exported from PyTorch or Keras (see :mod:`sparsa.sw.model.importer`).
    * ``.npz``: arrays ``<name>.weight`` (rows, cols) and optional ``<name>.bias`` (rows,),
      layers taken in file order. ``layer0.weight, layer0.bias, layer1.weight, ...`` and
      what ``np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})`` writes
      for a PyTorch ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU`` (``0.weight``, ``0.bias``,
      ``2.weight``, ...) both load as they are.

Every layer but the last is followed by a ReLU (``relu=False`` turns that off): the layout of
an ``nn.Sequential(Linear, ReLU, Linear, ReLU, ..., Linear)``.
"""

from dataclasses import dataclass

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.fileio import check_finite

__all__ = ["FloatLayer", "layers_from_arrays", "float_forward"]


@dataclass
class FloatLayer:
    """One fully connected layer in floating point: ``y = relu?(weight @ x + bias)``.

    Attributes
    ----------
    name : str
        Layer name (the ``<name>`` of ``<name>.weight``).
    weight : float32 or float64 array, shape (rows, cols)
        Rows are outputs, columns inputs (PyTorch's ``nn.Linear.weight`` layout); a float32
        file stays float32 (half the memory of a float64 copy).
    bias : float64 array, shape (rows,)
        Zeros when the file had none.
    relu : bool
        Whether a ReLU follows the layer.
    """
    name: str
    weight: np.ndarray
    bias: np.ndarray
    relu: bool

    @property
    def rows(self):
        return self.weight.shape[0]

    @property
    def cols(self):
        return self.weight.shape[1]


def layers_from_arrays(arrays, *, where="", relu=True):
    """Build checked :class:`FloatLayer` objects from ``{'<name>.weight': ..., ...}`` (in order)."""
    if "meta" in arrays:
        # A sparsa-compressed file given where a float model is expected: say so plainly.
        raise user_error(where, "model", "a float model (<name>.weight arrays)",
                         "a compressed model (has 'meta'); compress the float model instead")
    names, biases = [], {}
    for key, arr in arrays.items():
        name, _, kind = key.rpartition(".")
        if kind == "weight" and name:
            names.append(name)
        elif kind == "bias" and name:
            biases[name] = arr
        else:
            raise user_error(where, f"array '{key}'", "only '<name>.weight' and '<name>.bias' arrays",
                             "another name (only Linear layers are supported)")
    if not names:
        raise user_error(where, "model", "at least one '<name>.weight' array", "none")
    for name in biases:
        if name not in names:
            raise user_error(where, f"{name}.bias", f"a matching '{name}.weight'", "none")
    layers = []
    for k, name in enumerate(names):
        w = _check_matrix(arrays[f"{name}.weight"], where, f"{name}.weight")
        if layers and w.shape[1] != layers[-1].rows:
            prev = layers[-1]
            raise user_error(where, f"{name}.weight",
                             f"{prev.rows} columns (the rows of {prev.name}.weight, shape {prev.weight.shape})",
                             f"shape {w.shape}")
        b = _check_bias(biases.get(name), w.shape[0], where, f"{name}.bias")
        layers.append(FloatLayer(name, w, b, relu and k < len(names) - 1))
    return layers


def _check_matrix(arr, where, field):
    if arr.dtype.kind not in "biuf":
        raise user_error(where, field, "a float or int matrix", f"dtype {arr.dtype}")
    if arr.ndim != 2:
        raise user_error(where, field, "a 2-D matrix (rows = outputs, cols = inputs)", f"shape {arr.shape}")
    if arr.size == 0:
        raise user_error(where, field, "at least one weight", f"shape {arr.shape}")
    check_finite(arr, where, field)
    # float32 stays float32 (no 2x upcast of a big model; every consumer computes in float64
    # where it matters, and float32 -> float64 is exact); anything else becomes float64.
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def _check_bias(arr, rows, where, field):
    if arr is None:
        return np.zeros(rows)
    if arr.dtype.kind not in "biuf":
        raise user_error(where, field, "a float or int vector", f"dtype {arr.dtype}")
    if arr.shape != (rows,):
        raise user_error(where, field, f"shape ({rows},)", f"shape {arr.shape}")
    check_finite(arr, where, field)
    return arr.astype(np.float64)


def float_forward(layers, x, *, weights=None, keep_all=False):
    """Run the float model on ``x`` (cols,) or (batch, cols).

    ``weights`` optionally replaces each layer's weight matrix (e.g. the shared weights).
    With ``keep_all`` the list of every layer's output is returned.
    """
    x = np.asarray(x, dtype=np.float64)
    outs = []
    for k, layer in enumerate(layers):
        w = layer.weight if weights is None else weights[k]
        x = x @ w.T + layer.bias
        if layer.relu:
            x = np.maximum(x, 0.0)
        outs.append(x)
    return outs if keep_all else x

