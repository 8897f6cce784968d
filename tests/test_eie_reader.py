"""Amaranth-level tests of the EIE sparse-matrix readers (the pipelined one and the serial
one): rows resolved, padding skipped, beats and cycles counted from the encoding, latency."""

# amaranth: UnusedElaboratable=no

import random

import numpy as np
import pytest

from sparsa.hw.eie.spm_reader import SparseMatrixReader
from sparsa.hw.eie.spm_reader_serial import SerialSparseMatrixReader
from sparsa.sw.eie.format import encode_layer, entries_to_words

from amaranth_streams import pump, simulate
from eie_cases import hw_config, random_index


# ---- sparse-matrix reader ----------------------------------------------------------------------

@pytest.mark.parametrize("reader, macs, acc", [("pipelined", 1, "full"), ("pipelined", 2, "full"),
                                               ("pipelined", 2, "split"), ("serial", 1, "full")])
@pytest.mark.parametrize("density", [0.02, 0.2, 0.9])
def test_spm_reader_resolves_rows_and_skips_padding(density, reader, macs, acc):
    seed = int(400 + density * 100)
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows, cols = 150, 30
    idx = random_index(rows, cols, density, rng)
    s = encode_layer(idx, 1)[0]
    words = entries_to_words(s.v, s.z)
    cfg = hw_config(1, max_cols=200).replace(macs=macs, reader=reader, acc_banks=acc)
    split = macs == 2 and acc == "split"
    dut = (SerialSparseMatrixReader if reader == "serial" else SparseMatrixReader)(cfg, init=[int(w) for w in words])
    jobs = [(int(s.ptr[j]), int(s.ptr[j + 1]), j) for j in range(cols) if s.ptr[j + 1] > s.ptr[j]]
    want = [(int(r), int(idx[r, j]), j) for (_, _, j) in jobs for r in np.flatnonzero(idx[:, j])]
    beats, pads = [], [0]
    prng = random.Random(seed)

    async def bench(ctx):
        def read_beat():
            slots = [(b, ctx.get(dut.o.p.slot[b].row), ctx.get(dut.o.p.slot[b].v), ctx.get(dut.o.p.slot[b].x))
                     for b in range(macs) if ctx.get(dut.o.p.slot[b].valid)]
            return sorted(slots, key=lambda e: e[1]) if split else slots

        def put(job):
            a, b, j = job
            ctx.set(dut.i.p.start, a); ctx.set(dut.i.p.end, b); ctx.set(dut.i.p.x, j)

        def count_pads():
            pads[0] += ctx.get(dut.pads)
        beats.extend(await pump(ctx, dut, jobs, put, read_beat,
                                lambda got: sum(map(len, got)) >= len(want),
                                prng, p_ready=0.8, each_cycle=count_pads))
        for _ in range(4):
            pads[0] += ctx.get(dut.pads)
            await ctx.tick()
    simulate(dut, bench)
    got = [(r, v, x) for beat in beats for (_, r, v, x) in beat]
    assert got == want
    assert pads[0] == s.padding
    if split:
        # Every entry sits in the slot of its row's bank; two per beat only across banks.
        assert all(b == r % 2 for beat in beats for (b, r, _, _) in beat)
    else:
        # A beat fills its slots from slot 0, in row order (checked by got == want above).
        assert all([b for (b, _, _, _) in beat] == list(range(len(beat))) for beat in beats)
    assert all(1 <= len(beat) <= macs for beat in beats)
    if reader == "pipelined" and not split:
        # The docstring's throughput, counted from the encoding (:func:`_issue_steps`): the
        # beats, whatever the backpressure.
        want_beats = sum(1 for k in _issue_steps(s, jobs, macs) if k)
    elif reader == "pipelined":
        # Split banks: neighbours of a word pair when their rows differ in parity.
        want_beats = 0
        for a, b, _ in jobs:
            rows_of = np.cumsum(s.z[a:b].astype(np.int64) + 1) - 1
            for w in range(a // 8, (b - 1) // 8 + 1):
                par = [int(rows_of[e - a]) % 2 for e in range(max(a, 8 * w), min(b, 8 * w + 8)) if s.v[e]]
                i = 0
                while i < len(par):
                    i += 2 if i + 1 < len(par) and par[i] != par[i + 1] else 1
                    want_beats += 1
    if reader == "pipelined":
        assert len(beats) == want_beats


def _issue_steps(s, jobs, macs):
    """The pipelined reader's steps at full speed (full accumulator banks), counted from the
    encoding: the entries it issues in each cycle from its first output to its last, 0 for a
    cycle that issues none.

    A word's ``left`` is its real entries less those a step of the word before took along. A
    word with ``left > 0`` takes ceil(left / macs) steps of ``macs`` entries (its last one
    odd), and with macs=2 its odd last entry takes the first of the next word of the job
    stream along, of its column or the next. A word with nothing left takes one cycle, in
    which the next word issues its first step (one entry, or two with macs=2) when it has real
    entries: a word of padding costs no cycle of its own when real entries follow it."""
    ks = [int(np.count_nonzero(s.v[max(a, 8 * w):min(b, 8 * w + 8)]))
          for a, b, _ in jobs for w in range(a // 8, (b - 1) // 8 + 1)]
    steps, taken = [], 0
    for i, k in enumerate(ks):
        left = k - taken
        nk = ks[i + 1] if i + 1 < len(ks) else 0
        if left > 0:
            steps += [macs] * (left // macs) + [1] * (left % macs)
            taken = int(macs == 2 and left % 2 == 1 and nk > 0)
            steps[-1] += taken
        else:
            taken = min(macs, nk)
            steps.append(taken)
    while steps and not steps[-1]:
        steps.pop()         # a trailing word with nothing left issues nothing
    while steps and not steps[0]:
        steps.pop(0)        # nor do leading words of padding: cycles count from the first output
    return steps


@pytest.mark.parametrize("macs", [1, 2])
@pytest.mark.parametrize("density", [0.01, 0.02, 0.3])
def test_spm_reader_padding_words_cost_no_cycle(density, macs):
    """At full speed the pipelined reader takes exactly :func:`_issue_steps` from its first
    output to its last: a word of nothing but padding (rows far apart) costs no cycle of its
    own when a real entry follows it, in its column or the next (the reader issues that entry
    in the padding word's cycle)."""
    seed = int(700 + density * 100)
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows, cols = 400, 40
    idx = random_index(rows, cols, density, rng)
    s = encode_layer(idx, 1)[0]
    cfg = hw_config(1, max_cols=200).replace(macs=macs, reader="pipelined", acc_banks="full")
    dut = SparseMatrixReader(cfg, init=[int(w) for w in entries_to_words(s.v, s.z)])
    jobs = [(int(s.ptr[j]), int(s.ptr[j + 1]), j) for j in range(cols) if s.ptr[j + 1] > s.ptr[j]]
    want = [(int(r), int(idx[r, j]), j) for (_, _, j) in jobs for r in np.flatnonzero(idx[:, j])]
    words = [w for a, b, _ in jobs for w in range(a // 8, (b - 1) // 8 + 1)]
    empty = sum(not np.count_nonzero(s.v[max(a, 8 * w):min(b, 8 * w + 8)])
                for a, b, _ in jobs for w in range(a // 8, (b - 1) // 8 + 1))
    print(f"{len(jobs)} jobs, {len(words)} words, {empty} of them padding only, {len(want)} entries")
    assert empty > 0 or density > 0.1           # the sparse cases do exercise padding words
    got, first_last = [], []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        k, cycle = 0, 0
        while sum(len(b) for b in got) < len(want) and cycle < 20_000:
            if k < len(jobs):
                a, b, j = jobs[k]
                ctx.set(dut.i.p.start, a); ctx.set(dut.i.p.end, b); ctx.set(dut.i.p.x, j)
            ctx.set(dut.i.valid, k < len(jobs))
            took = k < len(jobs) and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid):
                got.append([(ctx.get(dut.o.p.slot[b].row), ctx.get(dut.o.p.slot[b].v), ctx.get(dut.o.p.slot[b].x))
                            for b in range(macs) if ctx.get(dut.o.p.slot[b].valid)])
                first_last.append(cycle)
            await ctx.tick()
            k += took
            cycle += 1
    simulate(dut, bench)
    assert [e for beat in got for e in beat] == want
    steps = _issue_steps(s, jobs, macs)
    assert [len(beat) for beat in got] == [k for k in steps if k]
    assert first_last[-1] - first_last[0] + 1 == len(steps)


@pytest.mark.parametrize("reader, latency", [("pipelined", 10), ("serial", 2)])
def test_spm_reader_latency_job_to_first_entry(reader, latency):
    """The docstrings' figures: a column job taken in cycle 0 shows its first entry on ``o`` in
    cycle 10 (pipelined reader) or 2 (serial reader)."""
    cfg = hw_config(1, max_cols=200).replace(macs=1, reader=reader)
    # one entry, v = 5 with z = 2 zero rows before it: row 2
    words = entries_to_words(np.array([5]), np.array([2]))
    dut = (SerialSparseMatrixReader if reader == "serial" else SparseMatrixReader)(cfg, init=[int(w) for w in words])

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.p.start, 0); ctx.set(dut.i.p.end, 1); ctx.set(dut.i.p.x, 7)
        ctx.set(dut.i.valid, 1)
        assert ctx.get(dut.i.ready)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for cycle in range(1, 20):
            if ctx.get(dut.o.valid):
                break
            await ctx.tick()
        assert cycle == latency
        slot = dut.o.p.slot[0]
        assert (ctx.get(slot.valid), ctx.get(slot.row), ctx.get(slot.v), ctx.get(slot.x)) == (1, 2, 5, 7)
    simulate(dut, bench)
