"""Row balancing: a hidden layer's units renumbered so that every PE holds the same work.

EIE interleaves a layer's rows over the PEs (row ``i`` on PE ``i % N``), and the busiest PE
sets the layer's time. A model pruned without load balance (plain magnitude pruning, or one
imported already pruned) leaves some PEs more nonzeros than others; so does a layer whose rows
do not divide evenly (1,000 rows over 64 PEs: 40 PEs hold 16 rows, 24 hold 15).
Load-balance-aware pruning (``sparsa compress --balance-pes N``) fixes this by choosing the
weights; renumbering fixes what it can without touching them.

The hidden units of an MLP can be renumbered freely: permuting a hidden layer's rows and bias,
and the next layer's columns, the same way changes no output bit (the next layer sums the same
products). :func:`balance_rows` does that for every hidden layer of a pack. The first layer's
columns (the input) and the last layer's rows (the output) stay in the user's order, so a
balanced pack is a drop-in replacement: same inputs, same outputs, same cycle-exact hardware.

The renumbering (:func:`balanced_row_order`) is greedy: rows by nonzeros, heaviest first, each
to the PE with the fewest nonzeros so far that still has a free row slot. Every PE keeps its
row count (so the accumulator and bias memories keep their sizes). The balance is of the
nonzeros in all columns; the work of one input is the nonzeros in its active columns, which
follows on average.
"""

import heapq

import numpy as np

from sparsa.sw.eie import format as ef

__all__ = ["balanced_row_order", "balanced_layer", "balance_rows", "busiest_pe_nonzeros"]


def busiest_pe_nonzeros(row_nnz, pes, order=None):
    """The largest per-PE sum of ``row_nnz`` when row ``i`` becomes row ``order[i]`` (identity
    when ``order`` is None) and rows are interleaved over ``pes`` PEs."""
    row_nnz = np.asarray(row_nnz, dtype=np.int64)
    new = np.arange(row_nnz.size) if order is None else np.asarray(order)
    return int(np.bincount(new % pes, weights=row_nnz, minlength=pes).max(initial=0))


def balanced_row_order(row_nnz, pes):
    """New index of every row (``order[old] = new``, a permutation of ``range(rows)``) that
    spreads ``row_nnz`` (nonzeros per row) evenly over ``pes`` interleaved PEs, each PE keeping
    its number of rows. Falls back to the identity when that is as good (ties included), so
    balancing never makes the busiest PE busier."""
    row_nnz = np.asarray(row_nnz, dtype=np.int64)
    rows = row_nnz.size
    free = [ef.rows_of_pe(rows, pes, k) for k in range(pes)]
    heap = [(0, k) for k in range(pes) if free[k]]
    heapq.heapify(heap)
    slot_rows = [[] for _ in range(pes)]
    for r in np.argsort(-row_nnz, kind="stable"):
        load, k = heapq.heappop(heap)
        slot_rows[k].append(int(r))
        free[k] -= 1
        if free[k]:
            heapq.heappush(heap, (load + int(row_nnz[r]), k))
    order = np.empty(rows, dtype=np.int64)
    for k, rs in enumerate(slot_rows):
        order[rs] = k + pes * np.arange(len(rs))        # PE k's local rows 0, 1, ...
    if busiest_pe_nonzeros(row_nnz, pes, order) >= busiest_pe_nonzeros(row_nnz, pes):
        return np.arange(rows, dtype=np.int64)
    return order


def _renumbered(layer, pes, rows_to=None, cols_to=None):
    from sparsa.sw.eie.pack import make_layer
    i, j, v = layer.coo()
    bias = layer.bias
    if rows_to is not None:
        i = rows_to[i]
        bias = np.empty_like(layer.bias)
        bias[rows_to] = layer.bias
    if cols_to is not None:
        j = cols_to[j]
    return make_layer(layer.name, layer.rows, layer.cols, i, j, v, layer.codebook, pes, bias, layer.shift,
                      layer.relu, out_frac_bits=layer.out_frac_bits, in_frac_bits=layer.in_frac_bits,
                      weight_frac_bits=layer.weight_frac_bits)


def balanced_layer(layer, pes):
    """``(layer renumbered by balanced_row_order, order)``: one layer's rows renumbered as
    :func:`balance_rows` renumbers a hidden layer's (its output ``y`` comes out as ``y'`` with
    ``y'[order] == y``)."""
    order = balanced_row_order(np.bincount(layer.coo()[0], minlength=layer.rows), pes)
    return _renumbered(layer, pes, order), order


def balance_rows(pack):
    """``(balanced pack, report)``: every hidden layer of an MLP pack renumbered by
    :func:`balanced_row_order`, the next layer's columns with it. The outputs are bit for bit
    those of ``pack`` for every input. ``report`` has, per layer, the busiest PE's nonzeros
    before and after (``busiest_before``, ``busiest_after``) and the mean (``mean``)."""
    from sparsa.sw.eie.pack import Pack
    if pack.lstm:
        raise ValueError("balance_rows: an LSTM pack's rows are laid out by gate and unit for the "
                         "element-wise unit; they cannot be renumbered")
    layers, cols_to, report = [], None, []
    for k, layer in enumerate(pack.layers):
        hidden = k + 1 < len(pack.layers)
        row_nnz = np.bincount(layer.coo()[0], minlength=layer.rows)
        order = balanced_row_order(row_nnz, pack.pes) if hidden else None
        layers.append(_renumbered(layer, pack.pes, order, cols_to))
        report.append({"layer": layer.name, "hidden": hidden, "mean": float(row_nnz.sum() / pack.pes),
                       "busiest_before": busiest_pe_nonzeros(row_nnz, pack.pes),
                       "busiest_after": busiest_pe_nonzeros(row_nnz, pack.pes, order)})
        cols_to = order
    return Pack(pes=pack.pes, layers=layers, input_frac_bits=pack.input_frac_bits), report
