"""Memory-image formats (sw/images.py): exact text/bytes, two's complement, round trips."""

import numpy as np
import pytest

from sparsa.sw import images


def test_hex_is_fixed_width_one_word_per_line():
    assert images.render_hex(np.array([0, 5, 0xABCD]), 16) == b"0000\n0005\nabcd\n"


def test_hex_width_rounds_up_to_whole_digits():
    assert images.render_hex(np.array([1, 0x1FFFF]), 17) == b"00001\n1ffff\n"
    assert images.hex_digits(64) == 16 and images.hex_digits(4) == 1


def test_mem_starts_with_address_zero():
    assert images.render_mem(np.array([1, 2]), 8) == b"@0\n01\n02\n"


def test_coe_is_xilinx_radix_16_with_semicolon_at_the_end():
    text = images.render_coe(np.array([1, 0x2A]), 8).decode()
    assert text == "memory_initialization_radix=16;\nmemory_initialization_vector=\n01,\n2a;\n"


def test_coe_of_an_empty_image_holds_one_zero_word():
    assert images.render_coe(np.array([], dtype=np.uint64), 16).endswith(b"vector=\n0000;\n")
    assert images.render_hex(np.array([], dtype=np.uint64), 16) == b""


def test_bin_is_little_endian_in_whole_bytes():
    assert images.render_bin(np.array([0x0102, 0xFFFF]), 16) == b"\x02\x01\xff\xff"
    assert images.render_bin(np.array([0x10203]), 17) == b"\x03\x02\x01"


def test_negative_values_are_twos_complement():
    assert images.render_hex(np.array([-1, -32768, 32767]), 16) == b"ffff\n8000\n7fff\n"
    assert images.render_hex(np.array([-2]), 32) == b"fffffffe\n"


def test_64_bit_words_keep_every_bit():
    w = np.array([0xFEDCBA9876543210, 1], dtype=np.uint64)
    assert images.render_hex(w, 64) == b"fedcba9876543210\n0000000000000001\n"
    for fmt in images.FORMATS:
        assert np.array_equal(images.parse(images.render(w, 64, fmt), 64, fmt), w)


@pytest.mark.parametrize("fmt", images.FORMATS)
@pytest.mark.parametrize("bits", [4, 16, 17, 32, 64])
def test_every_format_round_trips(fmt, bits):
    seed = bits * 10 + images.FORMATS.index(fmt)
    print("seed", seed)
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 1 << min(bits, 63), 50, dtype=np.uint64)
    w[0] = (1 << bits) - 1
    assert np.array_equal(images.parse(images.render(w, bits, fmt), bits, fmt), w)


@pytest.mark.parametrize("fmt", images.FORMATS)
def test_signed_read_back(fmt):
    v = np.array([-(1 << 31), -1, 0, (1 << 31) - 1])
    back = images.parse(images.render(v, 32, fmt), 32, fmt, signed=True)
    assert back.tolist() == v.tolist()


def test_read_image_picks_format_from_extension(tmp_path):
    (tmp_path / "a.coe").write_bytes(images.render_coe(np.array([7, 8]), 16))
    assert images.read_image(tmp_path / "a.coe", 16).tolist() == [7, 8]
    with pytest.raises(ValueError):
        images.read_image(tmp_path / "a.txt", 16)


def test_parsers_reject_malformed_text():
    with pytest.raises(ValueError):
        images.parse(b"01\n02\n", 8, "mem")                   # no @0
    with pytest.raises(ValueError):
        images.parse(b"memory_initialization_radix=16;\nmemory_initialization_vector=\n01,\n", 8, "coe")
    with pytest.raises(ValueError):
        images.parse(b"1ff\n", 8, "hex")                       # wider than 8 bits
    with pytest.raises(ValueError):
        images.parse(b"\x01\x02\x03", 16, "bin")               # not whole words


@pytest.mark.parametrize("bits", [16, 64])
def test_render_all_equals_each_format_alone(bits):
    w = np.array([0, 3, (1 << bits) - 1], dtype=np.uint64)
    assert images.render_all(w, bits) == {f: images.render(w, bits, f) for f in images.FORMATS}
    assert images.render_all(w[:0], bits)["coe"] == images.render_coe(w[:0], bits)
