"""Leading-non-zero detection: a 4-ary tree that finds the first set flag.

EIE's central control finds the next nonzero activation with a quadtree of LNZD nodes, each
looking at four children (21 nodes for 64 PEs). Each :class:`LNZDNode` passes up whether any
child is nonzero and the index of the first one; :class:`LNZDTree` stacks
``ceil(log4(n))`` levels of them. Purely combinational (latency 0); the scanner in
:mod:`.scanner` registers around it.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["LNZDNode", "LNZDTree"]


class LNZDNode(wiring.Component):
    """One LNZD node: the first of four children that has a nonzero.

    Parameters
    ----------
    index_bits : int
        Width of a child's index (0 for a leaf level).

    Members
    -------
    valid : Signal(4), in
        Child ``c`` has a nonzero.
    child_index : Signal(4 * index_bits), in
        Index within child ``c`` at bits ``[c*index_bits +: index_bits]``.
    any : Signal(1), out
    index : Signal(index_bits + 2), out
        ``{c, child_index[c]}`` of the first valid child ``c``.
    """

    def __init__(self, index_bits):
        self._w = index_bits
        super().__init__({
            "valid": In(4),
            "child_index": In(max(1, 4 * index_bits)),
            "any": Out(1),
            "index": Out(index_bits + 2),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._w
        m.d.comb += self.any.eq(self.valid.any())
        # Priority: child 0 first (lowest index = leading).
        with m.If(self.valid[0]):
            m.d.comb += self.index.eq(Cat(self.child_index[0:w] if w else C(0, 0), C(0, 2)))
        for c in (1, 2, 3):
            with m.Elif(self.valid[c]):
                m.d.comb += self.index.eq(Cat(self.child_index[c * w:(c + 1) * w] if w else C(0, 0), C(c, 2)))
        return m


class LNZDTree(wiring.Component):
    """Index of the lowest set bit of ``flags`` via a tree of :class:`LNZDNode`.

    Members
    -------
    flags : Signal(n), in
    any : Signal(1), out
    index : Signal(ceil_log2(n) or 1), out
        Valid when ``any``.
    """

    def __init__(self, n):
        self.n = n
        self.levels = max(1, -(-ceil_log2(n) // 2)) if n > 1 else 1
        super().__init__({
            "flags": In(n),
            "any": Out(1),
            "index": Out(max(1, ceil_log2(n))),
        })

    def elaborate(self, platform):
        m = Module()
        width = 4 ** self.levels
        valid = [self.flags[i] if i < self.n else C(0, 1) for i in range(width)]
        index = [None] * width             # leaf level: no index bits yet
        bits = 0
        for level in range(self.levels):
            nxt_valid, nxt_index = [], []
            for g in range(len(valid) // 4):
                node = LNZDNode(bits)
                m.submodules[f"node_l{level}_{g}"] = node
                m.d.comb += node.valid.eq(Cat(*valid[4 * g:4 * g + 4]))
                if bits:
                    m.d.comb += node.child_index.eq(Cat(*index[4 * g:4 * g + 4]))
                nxt_valid.append(node.any)
                nxt_index.append(node.index)
            valid, index, bits = nxt_valid, nxt_index, bits + 2
        m.d.comb += [self.any.eq(valid[0]), self.index.eq(index[0])]
        return m
