"""`sparsa verilog`: Verilog for a pack (memories initialised) or for explicit sizes."""

import numpy as np

from sparsa.cli import main


def test_verilog_for_a_pack_initialises_the_memories(tmp_path, capsys):
    w = np.zeros((8, 6), dtype=np.int16)
    w[0, 0], w[5, 3] = 1234, -77
    np.save(tmp_path / "w.npy", w)
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    assert main(["verilog", str(tmp_path / "pk"), "-o", str(tmp_path / "top.v")]) == 0
    text = (tmp_path / "top.v").read_text()
    assert "module eie_top(" in text
    # The codebook values of the pack are in the layer table's initial values.
    assert "16'h04d2" in text and "16'hffb3" in text       # 1234, -77


def test_verilog_from_sizes_shares_one_pe_module(tmp_path):
    assert main(["verilog", "--pes", "4", "--max-cols", "64", "--max-rows-pe", "16",
                 "--spm-words", "64", "-o", str(tmp_path / "e4.v")]) == 0
    text = (tmp_path / "e4.v").read_text()
    assert text.count("module sparsa_eie_pe(") == 1
    assert text.count("sparsa_eie_pe pe") == 4


def test_verilog_needs_a_pack_or_sizes(tmp_path, capsys):
    assert main(["verilog", "-o", str(tmp_path / "x.v")]) == 2
    assert "give a pack directory" in capsys.readouterr().err
    assert not (tmp_path / "x.v").exists()


def test_channels_other_than_one_say_why_not(tmp_path, capsys):
    assert main(["verilog", "--pes", "2", "--channels", "4", "-o", str(tmp_path / "t.v")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--channels: expected 1, found 4" in err[0] and "read port" in err[0]
    assert not (tmp_path / "t.v").exists()
