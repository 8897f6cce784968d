"""The swappable memories of an open-flow build as images: shapes, contents, placeholders, boot ROM.

Every model-dependent bit of a swappable build lives in block RAM (see :mod:`sparsa.boards.swap`):
PE ``k``'s ``spm<k>``, ``ptr_even<k>``, ``ptr_odd<k>``, ``bias<k>`` (``peep<k>`` for LSTM packs)
and the board harness's ``boot`` ROM (per layer the 8 layer-table fields and 16 codebook entries,
then the number of layers).
"""

import numpy as np

__all__ = ["BOOT_FIELDS", "BOOT_WIDTH", "MODEL_MEMORIES", "memory_shapes", "memory_images", "boot_image",
           "placeholder_images", "placeholder_memory_map", "images_to_memory_map", "mark_block_ram"]

BOOT_FIELDS = 24           # per layer: 8 layer-table fields, then 16 codebook entries
BOOT_WIDTH = 16
MODEL_MEMORIES = ("spm", "ptr_even", "ptr_odd", "bias", "peep")


def memory_shapes(cfg):
    """``{name: (depth, width)}`` of every swappable memory of a build with config ``cfg``."""
    from sparsa.sw.eie.format import BIAS_BITS
    shapes = {}
    for k in range(cfg.pes):
        shapes[f"spm{k}"] = (cfg.spm_words, 64)
        shapes[f"ptr_even{k}"] = (cfg.ptr_words, cfg.pointer_bits)
        shapes[f"ptr_odd{k}"] = (cfg.ptr_words, cfg.pointer_bits)
        shapes[f"bias{k}"] = (cfg.bias_words, BIAS_BITS)
        if cfg.lstm:
            shapes[f"peep{k}"] = (cfg.max_rows_pe, 16)
    shapes["boot"] = (BOOT_FIELDS * cfg.max_layers + 1, BOOT_WIDTH)
    return shapes


def _masked(values, depth, width):
    out = np.zeros(depth, dtype=np.uint64)
    v = np.asarray(values).astype(np.int64).astype(np.uint64)
    out[:v.size] = v
    return out & np.uint64((1 << width) - 1) if width < 64 else out


def boot_image(mm, cfg):
    """The boot ROM words (unsigned 16-bit) for memory map ``mm`` on hardware ``cfg``: the
    protocol's layer-table and codebook loads (:func:`~sparsa.sw.eie.protocol.table_loads`), each
    layer's 8 fields then its 16 codebook entries, and the layer count last."""
    from sparsa.sw.eie.protocol import table_loads
    words = np.zeros(BOOT_FIELDS * cfg.max_layers + 1, dtype=np.int64)
    for i, load in enumerate(table_loads(mm)):
        words[i] = load.word
    words[-1] = len(mm.layers)
    return words & 0xFFFF


def memory_images(mm, cfg):
    """``{name: uint64 array}``: the contents of every swappable memory for ``mm`` (the per-PE
    memories as the protocol flattens them, :func:`~sparsa.sw.eie.protocol.memory_map_arrays`)."""
    from sparsa.sw.eie.protocol import memory_map_arrays
    shapes = memory_shapes(cfg)
    img = memory_map_arrays(mm)
    if cfg.lstm and mm.peep is None:
        img.update({f"peep{k}": np.zeros(0, np.int64) for k in range(cfg.pes)})
    img["boot"] = boot_image(mm, cfg)
    return {name: _masked(img[name], *shapes[name]) for name in shapes}


def placeholder_images(cfg, seed=0x5BA55A):
    """Seeded random contents for every memory (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (depth, width) in memory_shapes(cfg).items():
        v = rng.integers(0, 1 << 63, depth, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, depth, dtype=np.uint64)
        out[name] = v & np.uint64((1 << width) - 1) if width < 64 else v
    return out


def _signed(v, width):
    v = np.asarray(v, dtype=np.uint64)
    if width >= 64:
        return v.astype(np.int64)
    s = v.astype(np.int64)
    return np.where(s >= (1 << (width - 1)), s - (1 << width), s)


def images_to_memory_map(images, cfg):
    """A :class:`~sparsa.sw.eie.memmap.MemoryMap` from memory images (inverse of :func:`memory_images`).

    The layers come from the boot ROM (its last word is the layer count); every memory keeps
    the hardware depth.
    """
    from sparsa.sw.eie.format import BIAS_BITS
    from sparsa.sw.eie.memmap import LAYER_FIELDS, LayerEntry, MemoryMap
    boot = images["boot"].astype(np.int64)
    n_layers = int(boot[-1])
    layers = []
    for li in range(n_layers):
        f = boot[li * BOOT_FIELDS:li * BOOT_FIELDS + 8]
        cb = _signed(boot[li * BOOT_FIELDS + 8:(li + 1) * BOOT_FIELDS], 16).astype(np.int16)
        layers.append(LayerEntry(**{name: int(f[i]) for i, name in enumerate(LAYER_FIELDS)}, codebook=cb))
    n = cfg.pes
    return MemoryMap(
        pes=n, layers=layers,
        spm=[images[f"spm{k}"].astype(np.uint64) for k in range(n)],
        ptr_even=[images[f"ptr_even{k}"].astype(np.int64) for k in range(n)],
        ptr_odd=[images[f"ptr_odd{k}"].astype(np.int64) for k in range(n)],
        bias=[_signed(images[f"bias{k}"], BIAS_BITS) for k in range(n)],
        peep=[_signed(images[f"peep{k}"], 16) for k in range(n)] if cfg.lstm else None)


def placeholder_memory_map(cfg, images):
    """The memory map the build synthesises: placeholder memories, an all-zero layer table.

    The layer table and codebook registers power up as zero (their values arrive from the
    boot ROM), so the logic around them does not depend on the model either.
    """
    from sparsa.sw.eie.memmap import LayerEntry
    mm = images_to_memory_map({**images, "boot": np.zeros_like(images["boot"])}, cfg)
    mm.layers = [LayerEntry(0, 0, 0, 0, 0, 0, 0, codebook=np.zeros(16, np.int16)) for _ in range(cfg.max_layers)]
    return mm


def mark_block_ram(verilog_text, names=MODEL_MEMORIES):
    """Ask yosys to put the memories ``names`` (default: every model memory) in block RAM,
    however small they are."""
    from sparsa.boards.memplan import mark_ram_style
    return mark_ram_style(verilog_text, dict.fromkeys(names, "block"))

