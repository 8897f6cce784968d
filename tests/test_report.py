"""`sparsa report`: compression stages computed independently, the HTML opened in a real browser."""

import re

import numpy as np
from browser import dump_dom

from sparsa.cli import main
from sparsa.sw.compress.huffman import coded_bits
from sparsa.sw.eie.pack_dir import load_pack
from sparsa.report import SECTIONS, compression_stages


def _pack(tmp_path, seed=41, pes=3):
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    values = np.array([-40, -25, -9, -3, 2, 5, 11, 30, 48])      # <= 15: the 4-bit codebook
    w = ((rng.random((40, 90)) < 0.08) * rng.choice(values, (40, 90))).astype(np.int16)
    np.save(tmp_path / "w.npy", w)
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", str(pes), "-o", str(tmp_path / "pk")]) == 0
    return w


def test_compression_stages_match_an_independent_count(tmp_path):
    w = _pack(tmp_path)
    pack = load_pack(tmp_path / "pk")
    st = compression_stages(pack.layers[0])
    # Entries by the format's rule, counted here from the matrix: per PE and column, a gap of g
    # zero rows before a nonzero costs g // 16 padding entries (4-bit relative index).
    entries = 0
    for k in range(3):
        local = w[k::3]
        for j in range(w.shape[1]):
            last = -1
            for r in np.flatnonzero(local[:, j]):
                entries += 1 + (r - last - 1) // 16
                last = r
    nnz = int(np.count_nonzero(w))
    assert st["nonzeros"] == nnz and st["entries"] == entries
    assert st["bits"]["dense fp32"] == 40 * 90 * 32
    # Pointers: 3 PEs x (cols + 1), each wide enough for the PE's largest entry index.
    pb = max(16, max(sl.entries for sl in pack.layers[0].slices).bit_length())   # 16-bit minimum words
    pointer = 3 * 91 * pb
    assert st["bits"]["pruned (fp32 + 4-bit index)"] == entries * (32 + 4) + pointer
    assert st["bits"]["+ weight sharing (4-bit)"] == entries * (4 + 4) + pointer + 16 * 16
    v = np.concatenate([sl.v for sl in pack.layers[0].slices])
    z = np.concatenate([sl.z for sl in pack.layers[0].slices])
    assert st["bits"]["+ Huffman"] == coded_bits(v, 16) + coded_bits(z, 16) + pointer + 16 * 16
    assert st["ratio"]["+ weight sharing (4-bit)"] == 40 * 90 * 32 / st["bits"]["+ weight sharing (4-bit)"]


def test_report_without_a_run_shows_every_section_in_chromium(tmp_path, capsys):
    _pack(tmp_path)
    out = tmp_path / "rep" / "report.html"
    assert main(["report", str(tmp_path / "pk"), "-o", str(out)]) == 0
    dom = dump_dom(out)
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in dom, sec
    assert "No hardware run given" in dom
    assert re.search(r'data-images="2/2"', dom), re.search(r"<body[^>]*>", dom).group(0)


def test_report_refuses_a_golden_run_report_and_writes_nothing(tmp_path, capsys):
    _pack(tmp_path)
    x = np.ones((1, 90), np.int16)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--report", str(tmp_path / "r.json")]) == 0
    capsys.readouterr()
    out = tmp_path / "rep" / "report.html"
    assert main(["report", str(tmp_path / "pk"), "-o", str(out), "--run", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "r.json" in err[0] and "layers[].cycles" in err[0]
    assert not out.exists() and not (tmp_path / "rep" / "report_files").exists()
