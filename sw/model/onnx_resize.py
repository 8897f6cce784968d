"""Resize, Upsample and Concat for :class:`sparsa.sw.model.onnx_ops.OnnxConverter`: the ops that
move values without arithmetic (sparsa's ``upsample`` and ``concat``).

sparsa's ``upsample`` repeats every pixel s x s times (output pixel o reads input pixel o // s).
ONNX's nearest Resize maps output pixel o to the input coordinate x given by its
``coordinate_transformation_mode`` and rounds x by its ``nearest_mode``; for an integer scale s,
write o = q s + r (0 <= r < s), then

* ``asymmetric``: x = o / s = q + r / s. ``floor`` gives q for every s; ``round_prefer_floor``
  gives q while r / s <= 1/2, for every r only when s <= 2; ``ceil``, ``round_prefer_ceil`` no.
* ``half_pixel``, ``pytorch_half_pixel``, ``half_pixel_symmetric`` (the same three when the
  output is exactly s times the input): x = q + (r + 1/2) / s - 1/2, strictly within 1/2 of q:
  both ``round_prefer_*`` give q, ``floor`` and ``ceil`` do not.
* ``tf_half_pixel_for_nn``: x = q + (r + 1/2) / s: ``floor`` gives q, the others do not.
* ``align_corners``: x = o (H - 1) / (s H - 1). At s = 2 that is q + (H - 1 - q) / (2H - 1)
  for r = 1 and q - q / (2H - 1) for r = 0, both strictly within 1/2 of q: both
  ``round_prefer_*`` give q (for every H); at s >= 3 not in general (H = 5: no).

The old ``Upsample`` (opsets 7-9) and Resize-10 take the pixel at floor(o / s) when they
enlarge, as ``asymmetric`` + ``floor``. tests/test_import_yolo_ops.py checks every pair
against onnxruntime.
"""

import numpy as np

from sparsa.sw.model.onnx_base import shape_str

__all__ = ["ResizeOps", "repeats"]

# (coordinate_transformation_mode, nearest_mode) pairs equal to pixel repetition for every
# integer scale (see the module docstring).
_REPEAT_MODES = {("asymmetric", "floor"), ("tf_half_pixel_for_nn", "floor")} | {
    (m, r) for m in ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric")
    for r in ("round_prefer_floor", "round_prefer_ceil")}


# ... and at scale 2 only
_REPEAT_MODES_2 = {("asymmetric", "round_prefer_floor"), ("align_corners", "round_prefer_floor"),
                   ("align_corners", "round_prefer_ceil")}


def repeats(mode, nearest, s):
    """Whether a nearest Resize with these modes and integer scale ``s`` repeats pixels."""
    return s == 1 or (mode, nearest) in _REPEAT_MODES or (s == 2 and (mode, nearest) in _REPEAT_MODES_2)


class ResizeOps:
    """Resize, Upsample and Concat (a mixin of :class:`sparsa.sw.model.onnx_ops.OnnxConverter`)."""

    def op_Resize(self, node, a):
        self.tensor(node, node.input[0], rank=4, read=False)
        if a.get("mode", "nearest") != "nearest":
            raise self.err(node, "mode", "nearest (pixel repetition: sparsa's upsample)", a["mode"])
        if self.opset is not None and self.opset < 11:      # Resize-10: (X, scales), asymmetric + floor
            self._upsample(node, self._scales(node, a, node.input[1], ""), "asymmetric", "floor")
            return
        mode = a.get("coordinate_transformation_mode", "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
        if mode == "tf_crop_and_resize":
            raise self.err(node, "coordinate_transformation_mode", "not tf_crop_and_resize (no region of interest)",
                           mode)
        ins = list(node.input) + ["", "", ""]
        self._upsample(node, self._scales(node, a, ins[2], ins[3]), mode, nearest)

    def op_Upsample(self, node, a):
        """Opsets 7-9 (deprecated since 10): scales as an attribute (7, 8) or input (9)."""
        self.tensor(node, node.input[0], rank=4, read=False)
        if a.get("mode", "nearest") != "nearest":
            raise self.err(node, "mode", "nearest (pixel repetition: sparsa's upsample)", a["mode"])
        if "scales" in a:
            scales = [float(v) for v in a["scales"]]
        else:
            scales = self._scales(node, a, node.input[1] if len(node.input) > 1 else "", "")
        self._upsample(node, scales, "asymmetric", "floor")

    def _scales(self, node, a, scales_name, sizes_name):
        """The four scales of a Resize from its ``scales`` input, or from ``sizes`` (output size
        over input size); with the opset-18 ``axes``, for those axes (the others 1)."""
        shape = self.shape[node.input[0]]
        axes = [int(x) % 4 for x in a.get("axes", [0, 1, 2, 3])]
        scales = self.const_or_none(node, scales_name, "scales")
        if scales is None:
            sizes = self.const_or_none(node, sizes_name, "sizes")
            if sizes is None:
                raise self.err(node, "scales/sizes", "one of them, a constant", "neither")
            if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
                raise self.err(node, "keep_aspect_ratio_policy", "stretch (with sizes)", a["keep_aspect_ratio_policy"])
            if any(shape[ax] is None for ax in axes):
                raise self.err(node, "sizes", f"an input of known size (scaled by sizes), not {shape_str(shape)}",
                               sizes.astype(int).tolist())
            scales = np.array([sz / shape[ax] for sz, ax in zip(sizes.reshape(-1), axes)])
        scales = scales.reshape(-1)
        if len(scales) != len(axes):
            raise self.err(node, "scales", f"{len(axes)} values (one per axis)", scales.tolist())
        full = [1.0] * 4
        for v, ax in zip(scales, axes):
            full[ax] = float(v)
        return full

    def _upsample(self, node, scales, mode, nearest):
        s = scales[2]
        if scales[:2] != [1, 1] or scales[3] != s or s < 1 or s != int(s):
            raise self.err(node, "scales", "[1, 1, s, s] with an integer s >= 1 (or sizes [N, C, s*H, s*W])",
                           [float(f"{v:.6g}") for v in scales])
        s = int(s)
        if not repeats(mode, nearest, s):
            raise self.err(node, "coordinate_transformation_mode/nearest_mode", "a pair that repeats pixels at scale "
                           f"{s}: asymmetric/floor, half_pixel (or pytorch_half_pixel)/round_prefer_floor or "
                           "round_prefer_ceil, tf_half_pixel_for_nn/floor; at scale 2 also asymmetric/"
                           "round_prefer_floor and align_corners/round_prefer_*", f"{mode}/{nearest}")
        if s == 1:                  # nothing to do: removed, like an Identity
            self.alias(node, node.input[0])
            return
        n, c, h, w = self.shape[node.input[0]]
        x = self.tensor(node, node.input[0])
        self.new_layer(node, "upsample", [x], (n, c, h and h * s, w and w * s), scale=s)

    def op_Concat(self, node, a):
        names = list(node.input)
        for t in names:
            if t in self.consts:
                raise self.err(node, "inputs", "computed tensors (no constants)", f"the constant '{t}'")
            self.tensor(node, t, rank=4, read=False)
        axis = a.get("axis")
        if axis not in (1, -3):
            raise self.err(node, "axis", "1 (or -3): the channels of (N, C, H, W) tensors", axis)
        shapes = [self.shape[t] for t in names]
        if any(sh[0] != shapes[0][0] or sh[2:] != shapes[0][2:] for sh in shapes):
            raise self.err(node, "inputs", "tensors of the same N, H and W",
                           " and ".join(shape_str(sh) for sh in shapes))
        if len(names) == 1:
            self.alias(node, names[0])
            return
        srcs = [self.tensor(node, t) for t in names]
        c = None if any(sh[1] is None for sh in shapes) else sum(sh[1] for sh in shapes)
        self.new_layer(node, "concat", srcs, (shapes[0][0], c) + tuple(shapes[0][2:]))
