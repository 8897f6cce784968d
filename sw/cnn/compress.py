"""Compress a float CNN graph to an int8 one: magnitude pruning and dynamic fixed point.

Angel-Eye's scheme (Guo et al., 2017): every tensor has a power-of-two scale, ``x = q * 2**-f``
with ``q`` int8 and ``f`` its *fractional bits* (negative ``f`` for values beyond 127), chosen
per layer. :func:`compress_cnn`:

1. prunes each conv2d / linear weight by magnitude to ``density`` (optional, no retraining);
2. runs the (pruned) float graph on calibration inputs and records every tensor's range;
3. gives every tensor the largest ``f`` at which its calibration range fits int8 (round half
   up). Pools and upsamples keep their input's scale; the inputs of an ``add`` or a ``concat``
   and its output must share one scale, so all tensors joined through them form a *scale
   group* that takes the smallest ``f`` of its members (the producers of the inputs are forced to it);
4. per conv2d / linear layer with input ``f_in`` and output ``f_out``: weight bits ``f_w``,
   the largest at which every weight fits int8 and the bias fits int32 at ``f_in + f_w``;
   ``shift = f_in + f_w - f_out``. A negative shift (output finer than the accumulator) lowers
   the output's scale group to ``f_in + f_w`` (shift 0); a shift above 31 lowers ``f_w``. Both
   are noted in the report.

The result is an integer graph (:func:`sparsa.sw.cnn.golden.validate_int_graph`) with the
formats in ``spec["quant"]``: ``input_frac``, ``output_frac`` (the golden output ``y`` means
``y * 2**-output_frac``), the ``frac`` of every tensor and a per-layer report. See docs/cnn.md.
"""

import copy

import numpy as np

from sparsa.sw.cnn.golden import cnn_forward, validate_int_graph
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import check_finite
from sparsa.sw.fixedpoint import dequantize, quantize
from sparsa.sw.model.graph import Graph, _conv, _pads, _pool, _reshape_op, _sources, activation
from sparsa.sw.compress.prune import magnitude_mask

__all__ = ["compress_cnn", "default_calib", "float_layer_outputs", "frac_bits_for", "quantize_input",
           "dequantize_output", "quant_error", "DEFAULT_CALIB_COUNT", "FRAC_MIN", "FRAC_MAX"]

FRAC_MIN, FRAC_MAX = -16, 30          # fractional bits considered for any tensor
DEFAULT_CALIB_COUNT, DEFAULT_CALIB_SEED = 64, 0
_WEIGHTED = ("conv2d", "linear")


def default_calib(graph, count=DEFAULT_CALIB_COUNT, seed=DEFAULT_CALIB_SEED):
    """Calibration inputs when none are given: ``count`` inputs uniform in [-1, 1) (seeded)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(count,) + graph.input_shape)


def _fits(x, f, lo, hi):
    q = np.floor(np.asarray(x, dtype=np.float64) * 2.0 ** f + 0.5)
    return q.size == 0 or (q.min() >= lo and q.max() <= hi)


def frac_bits_for(x, lo=-128, hi=127, fmin=FRAC_MIN, fmax=FRAC_MAX):
    """Largest ``f`` in ``fmin..fmax`` at which every value of ``x`` rounds into ``[lo, hi]``
    (``fmax`` for all zeros); ``None`` when even ``fmin`` does not fit."""
    x = np.asarray(x, dtype=np.float64)
    ext = np.array([x.min(), x.max()]) if x.size else x
    for f in range(fmax, fmin - 1, -1):
        if _fits(ext, f, lo, hi):
            return f
    return None


def float_layer_outputs(graph, x):
    """Every tensor of the float graph for a batch x (N, C, H, W): ``{name: (N, ...) float64}``
    (``"input"`` included; a linear output is (N, out, 1, 1)). Same arithmetic as ``graph_forward``."""
    x = np.asarray(x, dtype=np.float64)
    outs = {"input": x}
    prev = "input"
    for layer in graph.layers:
        op = layer["op"]
        srcs = [outs[s] for s in _sources(layer, prev)]
        if op == "conv2d":
            w = graph.arrays[layer["weight"]].astype(np.float64)
            b = graph.arrays[layer["bias"]].astype(np.float64)
            y = np.stack([_conv(a, w, b, layer.get("stride", 1), layer.get("padding", 0)) for a in srcs[0]])
        elif op in ("maxpool2d", "avgpool2d"):
            k = layer.get("size", 2)
            red = np.max if op == "maxpool2d" else np.mean
            y = np.stack([_pool(a, k, layer.get("stride", k), red, _pads(layer)) for a in srcs[0]])
        elif op == "add":
            y = srcs[0] + srcs[1]
        elif op in ("upsample", "concat"):
            y = _reshape_op(layer, srcs, axis=1)
        else:
            w = graph.arrays[layer["weight"]].astype(np.float64)
            b = graph.arrays[layer["bias"]].astype(np.float64)
            y = (srcs[0].reshape(len(x), -1) @ w.T + b)[:, :, None, None]
        y = activation(layer, y)
        outs[layer["name"]] = y
        prev = layer["name"]
    return outs


def quantize_input(graph, x):
    """Float inputs -> int8 at the integer graph's ``input_frac`` (round half up, saturate)."""
    return quantize(x, graph.spec["quant"]["input_frac"], bits=8, dtype=np.int8)


def dequantize_output(graph, y):
    """Golden int8 outputs -> float: ``y * 2**-output_frac``."""
    return dequantize(y, graph.spec["quant"]["output_frac"])


def quant_error(int_graph, float_graph, x):
    """Relative RMS error of the dequantized golden output against the float graph on x (N, C, H, W)."""
    ref = float_layer_outputs(float_graph, x)[float_graph.layers[-1]["name"]].reshape(len(x), -1)
    got = dequantize_output(int_graph, cnn_forward(int_graph, quantize_input(int_graph, x))).reshape(len(x), -1)
    return float(np.sqrt(np.sum((got - ref) ** 2)) / max(np.sqrt(np.sum(ref ** 2)), 1e-300))


class _Groups:
    """Union-find over tensor names: the tensors that must share a scale."""

    def __init__(self):
        self.parent = {}

    def find(self, t):
        self.parent.setdefault(t, t)
        while self.parent[t] != t:
            self.parent[t] = self.parent[self.parent[t]]
            t = self.parent[t]
        return t

    def union(self, a, b):
        self.parent[self.find(a)] = self.find(b)


def _check_float_graph(graph, where):
    dtype = graph.spec["input"].get("dtype", "float32")
    if dtype != "float32":
        raise user_error(where, "input.dtype", "a float model ('float32')",
                         f"{dtype!r}" + (" (already an integer model)" if dtype == "int8" else ""))
    for layer in graph.layers:
        if layer["op"] in _WEIGHTED:
            for key in ("weight", "bias"):
                arr = graph.arrays[layer[key]]
                if arr.dtype.kind not in "biuf":
                    raise user_error(where, f"{layer['name']}.{key}", "a numeric array", f"dtype {arr.dtype}")
                check_finite(arr, where, f"{layer['name']}.{key}")
    # The integer engine's structural limits (kernel, stride, padding, pool windows), checked
    # before the calibration run on a stand-in with zero integer arrays.
    stand_in = copy.deepcopy(graph.spec)
    stand_in["input"]["dtype"] = "int8"
    validate_int_graph(Graph(stand_in, {k: np.zeros(v.shape, np.int8) for k, v in graph.arrays.items()}), where)


def _check_calib(graph, calib, where):
    calib = np.asarray(calib)
    if calib.ndim == 3:
        calib = calib[None]
    if calib.dtype.kind not in "biuf" or calib.ndim != 4 or calib.shape[1:] != graph.input_shape or not len(calib):
        raise user_error(where, "calibration data", f"shape (n >= 1, {', '.join(map(str, graph.input_shape))})",
                         f"shape {calib.shape}")
    check_finite(calib, where, "calibration data")
    return calib.astype(np.float64)


def _densities(graph, density, prune, where):
    out = {}
    prune = dict(prune or {})
    names = {l["name"] for l in graph.layers if l["op"] in _WEIGHTED}
    for name in prune:
        if name not in names:
            raise user_error(where, "prune", "names of conv2d/linear layers", repr(name))
    for name in names:
        d = prune.get(name, density)
        if d is not None and not 0.0 < d <= 1.0:
            raise user_error(where, f"density of {name}" if name in prune else "--density",
                             "a fraction in (0, 1]", f"{d}")
        out[name] = d
    return out


def compress_cnn(graph, calib=None, density=None, prune=None, *, where="model", calib_where=None):
    """Compress a float sparsa-model graph to an integer one (see the module docstring).

    Parameters
    ----------
    graph : Graph
        Float model (input dtype ``float32``).
    calib : array (N, C, H, W), optional
        Calibration inputs; default :func:`default_calib` (64 inputs uniform in [-1, 1), seed 0).
    density : float in (0, 1], optional
        Keep this fraction of the weights of every conv2d / linear layer (by magnitude).
    prune : dict, optional
        ``{layer name: density}`` overriding ``density`` for single layers.
    where : str
        Names the model in errors.
    calib_where : str, optional
        Names the calibration data in the errors it causes (activations out of range).

    Returns
    -------
    Graph
        The integer graph; ``spec["quant"]`` holds the formats and the per-layer report.
    """
    _check_float_graph(graph, where)
    calib = default_calib(graph) if calib is None else _check_calib(graph, calib, where)
    dens = _densities(graph, density, prune, where)

    # 1. Prune.
    weights = {}
    for layer in graph.layers:
        if layer["op"] in _WEIGHTED:
            w = graph.arrays[layer["weight"]].astype(np.float64)
            d = dens[layer["name"]]
            if d is not None:
                w = w * magnitude_mask(w.reshape(w.shape[0], -1), d).reshape(w.shape)
            weights[layer["name"]] = w
    pruned = Graph(copy.deepcopy(graph.spec), dict(graph.arrays))
    for layer in pruned.layers:
        if layer["op"] in _WEIGHTED:
            pruned.arrays[layer["weight"]] = weights[layer["name"]]

    # 2-3. Calibrate, then one scale per group of tensors joined by pools and adds.
    acts = float_layer_outputs(pruned, calib)
    groups = _Groups()
    prev = "input"
    for layer in graph.layers:
        groups.find(layer["name"])
        if layer["op"] in ("maxpool2d", "avgpool2d", "add", "upsample", "concat"):
            for s in _sources(layer, prev):
                groups.union(layer["name"], s)
        prev = layer["name"]
    frac = {}
    for name, a in acts.items():
        # An all-zero tensor (a dead ReLU, say) gets 7 bits, the range [-1, 1), not the maximum.
        f = frac_bits_for(a) if np.any(a) else 7
        if f is None:
            raise user_error(calib_where or where, f"{name} activations" + (f" of {where}" if calib_where else ""),
                             f"|value| < {128 * 2.0 ** -FRAC_MIN:g} on the calibration data",
                             f"{float(np.abs(a).max()):g}")
        root = groups.find(name)
        frac[root] = min(frac.get(root, f), f)
    fr = lambda t: frac[groups.find(t)]

    # 4. Weight bits and shifts; lower a scale group wherever a shift would be negative.
    notes = {}
    for _ in range(10 * len(graph.layers) + 10):
        changed, plan = False, {}
        prev = "input"
        for layer in graph.layers:
            name, src = layer["name"], _sources(layer, prev)[0]
            prev = name
            if layer["op"] not in _WEIGHTED:
                continue
            f_in, f_out = fr(src), fr(name)
            bias = graph.arrays[layer["bias"]].astype(np.float64)
            fw = frac_bits_for(weights[name])
            if fw is None:
                raise user_error(where, f"{name}.weight", f"|weight| < {128 * 2.0 ** -FRAC_MIN:g}",
                                 f"{float(np.abs(weights[name]).max()):g}")
            while fw > FRAC_MIN and not _fits(bias, f_in + fw, -(1 << 31), (1 << 31) - 1):
                fw -= 1
            if f_in + fw - f_out > 31:
                fw = f_out + 31 - f_in
                notes[name] = "shift capped at 31 (weight bits lowered)"
            if f_in + fw < f_out:
                if groups.find(src) == groups.find(name):
                    raise user_error(where, f"{name}.weight", "|weight| <= 127 for a layer inside a residual "
                                     "(its input and output share a scale)", f"{float(np.abs(weights[name]).max()):g}")
                frac[groups.find(name)] = f_in + fw
                notes[name] = f"output frac bits lowered from {f_out} to {f_in + fw} (shift would be negative)"
                changed = True
                break
            plan[name] = (f_in, fw, f_out)
        if not changed:
            break
    else:
        raise user_error(where, "fixed-point formats", "a consistent choice of frac bits", "none after lowering")

    # Build the integer graph and its report.
    spec = copy.deepcopy(graph.spec)
    spec["input"]["dtype"] = "int8"
    arrays = {k: v for k, v in graph.arrays.items()}
    shapes = graph.shapes()
    rows = []
    for layer in spec["layers"]:
        name, op = layer["name"], layer["op"]
        row = {"name": name, "op": op, "shape": list(shapes[name]), "out_frac": fr(name)}
        if op in _WEIGHTED:
            f_in, fw, f_out = plan[name]
            w, b = weights[name], graph.arrays[layer["bias"]].astype(np.float64)
            qw = quantize(w, fw, bits=8, dtype=np.int8)
            qb_raw = np.floor(b * 2.0 ** (f_in + fw) + 0.5)
            qb = quantize(b, f_in + fw, bits=32, dtype=np.int32)
            arrays[layer["weight"]], arrays[layer["bias"]] = qw, qb
            layer["shift"] = int(f_in + fw - f_out)
            orig = graph.arrays[layer["weight"]].astype(np.float64)
            err = np.sqrt(np.sum((dequantize(qw, fw) - orig) ** 2)) / max(np.sqrt(np.sum(orig ** 2)), 1e-300)
            row.update(in_frac=int(f_in), weight_frac=int(fw), shift=layer["shift"], weights=int(qw.size),
                       nonzeros=int(np.count_nonzero(qw)), density=float(np.count_nonzero(qw) / qw.size),
                       density_target=dens[name], weight_rel_rms=float(err),
                       bias_saturated=int(np.count_nonzero(qb_raw != qb)))
        if name in notes:
            row["note"] = notes[name]
        rows.append(row)
    last = graph.layers[-1]["name"]
    spec["quant"] = {"scheme": "dynamic fixed point: value = int8 * 2**-frac", "input_frac": int(fr("input")),
                     "output_frac": int(fr(last)), "calibration_inputs": int(len(calib)),
                     "frac": {t: int(fr(t)) for t in ["input"] + [l["name"] for l in graph.layers]},
                     "layers": rows}
    out = Graph(spec, arrays)
    validate_int_graph(out, where)
    return out
