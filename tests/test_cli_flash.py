"""``sparsa flash``: the openFPGALoader command for each board, checked inputs, and one line with
exit 2 when no board is attached (this machine has none)."""

import json

import pytest

from sparsa.cli import main


def _build_dir(tmp_path, board, bitstream):
    d = tmp_path / "b"
    d.mkdir()
    (d / "report.json").write_text(json.dumps({"format": "sparsa-build", "board": board}))
    if bitstream:
        (d / bitstream).write_bytes(b"\xff" * 64)
    return d


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("board,bit,opts,want", [
    ("ulx3s-85f", "top.bit", [], ["-b", "ulx3s"]),
    ("ulx3s-85f", "top.bit", ["--flash"], ["-b", "ulx3s", "-f"]),
    ("icebreaker", "top.bin", [], ["-b", "ice40_generic", "-f"]),
])
def test_no_board_attached_is_one_line_and_exit_2(tmp_path, capsys, board, bit, opts, want):
    d = _build_dir(tmp_path, board, bit)
    assert main(["flash", str(d), *opts]) == 2
    out = capsys.readouterr()
    assert f"openFPGALoader {' '.join(want)} {d / bit}" in out.out
    err = out.err.strip().splitlines()
    assert len(err) == 1 and "failed (exit" in err[0] and "ftdi" in err[0].lower(), err


def test_sram_on_the_icebreaker_is_refused(tmp_path, capsys):
    d = _build_dir(tmp_path, "icebreaker", "top.bin")
    assert main(["flash", str(d), "--sram"]) == 2
    assert "--sram: expected --flash on the icebreaker" in _one_error_line(capsys)


def test_a_build_without_bitstream_or_of_another_board_is_refused(tmp_path, capsys):
    d = _build_dir(tmp_path, "ulx3s-85f", None)
    assert main(["flash", str(d)]) == 2
    assert "bitstream: expected top.bit" in _one_error_line(capsys)
    assert main(["flash", str(d), "--board", "icebreaker"]) == 2
    assert "board: expected --board icebreaker, found ulx3s-85f" in _one_error_line(capsys)
    (d / "report.json").write_text(json.dumps({"board": "zynq7020"}))
    assert main(["flash", str(d)]) == 2
    assert "board: expected an open-flow board" in _one_error_line(capsys)
    (d / "report.json").write_text("[1, 2")
    assert main(["flash", str(d)]) == 2
    _one_error_line(capsys)


def test_a_missing_loader_is_one_line(tmp_path, capsys):
    d = _build_dir(tmp_path, "ulx3s-85f", "top.bit")
    assert main(["flash", str(d), "--loader", str(tmp_path / "nope")]) == 2
    assert "not found" in _one_error_line(capsys)
