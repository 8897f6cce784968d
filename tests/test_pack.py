"""Packing (sw/eie/pack.py): exact matrices, compressed models, the pack directory and its checks."""

import hashlib
import json

import numpy as np
import pytest

from sparsa.sw import images
from sparsa.sw.eie import pack as P
from sparsa.sw.eie.pack_dir import load_pack, write_pack
from sparsa.sw.errors import UserError
from sparsa.sw.eie.golden import GoldenLayer, run_layers


def random_matrix(rng, rows, cols, density=0.2, values=(-7, -1, 2, 3, 100, -32768, 32767)):
    return ((rng.random((rows, cols)) < density) * rng.choice(values, (rows, cols))).astype(np.int16)


def compressed_arrays(rng, sizes, *, fx=6, relu_last=False):
    """A synthetic ``sparsa compress`` result: layers sizes[0] -> sizes[1] -> ..."""
    meta = {"format": "sparsa-compressed", "version": 1, "input_frac_bits": fx, "layers": []}
    arrays = {}
    for k, (cols, rows) in enumerate(zip(sizes, sizes[1:])):
        index = ((rng.random((rows, cols)) < 0.3) * rng.integers(1, 16, (rows, cols))).astype(np.uint8)
        cb = np.zeros(16, np.int16)
        cb[1:] = np.sort(rng.integers(-300, 300, 15))
        arrays[f"layer{k}.index"] = index
        arrays[f"layer{k}.codebook"] = cb
        arrays[f"layer{k}.bias"] = rng.integers(-5000, 5000, rows).astype(np.int32)
        arrays[f"layer{k}.centroids"] = cb.astype(np.float32) / 256
        last = k == len(sizes) - 2
        meta["layers"].append({"name": f"fc{k}", "rows": rows, "cols": cols, "bits": 4,
                               "in_frac_bits": fx, "weight_frac_bits": 8, "out_frac_bits": fx,
                               "shift": 8, "relu": (not last) or relu_last, "density": 0.3})
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


@pytest.fixture
def rng():
    print("seed", 12345)
    return np.random.default_rng(12345)


#
# pack_matrix
#

def test_distinct_values_become_sorted_codebook_entries():
    w = np.array([[0, 5, -3], [5, 0, 9]], dtype=np.int16)
    p = P.pack_matrix(w, 1)
    assert p.layers[0].codebook.tolist() == [0, -3, 5, 9] + [0] * 12
    assert p.layers[0].nnz == 4 and p.input_frac_bits is None


def test_fifteen_distinct_values_fit():
    w = np.arange(1, 16, dtype=np.int16).reshape(3, 5)
    assert np.array_equal(P.unpack(P.pack_matrix(w, 2))["layer0.weight"], w)


def test_sixteen_distinct_values_are_refused():
    with pytest.raises(UserError, match="at most 15"):
        P.pack_matrix(np.arange(1, 17).reshape(4, 4), 1)


def test_float_matrix_with_integer_values_is_accepted():
    w = np.array([[0.0, 2.0], [-4.0, 0.0]])
    assert P.unpack(P.pack_matrix(w, 2))["layer0.weight"].tolist() == [[0, 2], [-4, 0]]


def test_unpack_is_exact_inverse(rng):
    w = random_matrix(rng, 41, 17)
    b = rng.integers(-2**31, 2**31, 41).astype(np.int32)
    out = P.unpack(P.pack_matrix(w, 6, bias=b))
    assert out["layer0.weight"].dtype == np.int16 and np.array_equal(out["layer0.weight"], w)
    assert out["layer0.bias"].dtype == np.int32 and np.array_equal(out["layer0.bias"], b)


def test_layer_load_properties(rng):
    w = np.zeros((10, 2), np.int16)
    w[[0, 9], 0] = 3
    w[1, 1] = -1
    layer = P.pack_matrix(w, 3).layers[0]
    assert layer.rows_per_pe == [4, 3, 3]
    assert layer.entries_per_pe == [2, 1, 0]          # rows 0 and 9 -> PE 0, row 1 -> PE 1
    assert layer.padding_per_pe == [0, 0, 0]
    assert layer.words_per_pe == [1, 1, 0]


def test_golden_layers_are_built_from_the_decoded_slices(rng):
    w = random_matrix(rng, 30, 20)
    b = rng.integers(-1000, 1000, 30)
    p = P.pack_matrix(w, 4, bias=b, shift=3, relu=True)
    x = rng.integers(-3000, 3000, (5, 20)).astype(np.int16)
    ref = run_layers([GoldenLayer.from_dense(w, b, 3, True)], x)
    assert np.array_equal(p.run_golden(x), ref)
    assert np.array_equal(p.run_golden(x[0]), ref[0])


@pytest.mark.parametrize("pes", [0, -1])
def test_pe_count_below_one_is_refused(pes):
    with pytest.raises(UserError, match="PE count"):
        P.pack_matrix(np.eye(2), pes)


@pytest.mark.parametrize("shift", [-1, 63])
def test_shift_outside_0_62_is_refused(shift):
    with pytest.raises(UserError, match="shift"):
        P.pack_matrix(np.eye(2), 1, shift=shift)


#
# pack_compressed
#

def test_compressed_model_packs_every_layer(rng, tmp_path):
    arrays = compressed_arrays(rng, [12, 20, 7])
    np.savez(tmp_path / "m.npz", **arrays)
    p = P.pack_compressed(tmp_path / "m.npz", 3)
    assert [l.name for l in p.layers] == ["fc0", "fc1"] and p.input_frac_bits == 6
    assert [(l.shift, l.relu, l.weight_frac_bits) for l in p.layers] == [(8, True, 8), (8, False, 8)]
    out = P.unpack(p)
    for k in range(2):
        want = arrays[f"layer{k}.codebook"][arrays[f"layer{k}.index"]]
        assert np.array_equal(out[f"layer{k}.weight"], want)
        assert np.array_equal(out[f"layer{k}.bias"], arrays[f"layer{k}.bias"])
    assert p.layers[0].nnz == np.count_nonzero(arrays["layer0.index"])


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.pop("meta"), "meta"),
    (lambda a: a.__setitem__("meta", np.array('{"format": "other"}')), "meta.format"),
    (lambda a: a.__setitem__("layer0.codebook", np.arange(16, dtype=np.int16) + 1), r"codebook\[0\]"),
    (lambda a: a.__setitem__("layer0.index", np.full((20, 12), 16, np.uint8)), "layer0.index"),
    (lambda a: a.__setitem__("layer1.bias", np.zeros(3, np.int32)), "layer1.bias shape"),
    (lambda a: a.pop("layer1.codebook"), "layer1.codebook"),
])
def test_malformed_compressed_model_is_refused(rng, mutate, message):
    arrays = compressed_arrays(rng, [12, 20, 7])
    mutate(arrays)
    with pytest.raises(UserError, match=message):
        P.pack_compressed(arrays, 2)


def test_layer_chain_mismatch_is_refused(rng):
    arrays = compressed_arrays(rng, [12, 20, 7])
    meta = json.loads(str(arrays["meta"]))
    meta["layers"][1]["cols"] = 19
    arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(UserError, match="previous layer's rows"):
        P.pack_compressed(arrays, 2)


#
# The pack directory
#

def test_write_and_load_round_trip(rng, tmp_path):
    p = P.pack_compressed(compressed_arrays(rng, [12, 20, 7]), 3)
    write_pack(p, tmp_path / "pk")
    q = load_pack(tmp_path / "pk")
    assert q.pes == 3 and q.pointer_bits == 16 and q.input_frac_bits == 6
    for a, b in zip(p.layers, q.layers):
        assert (a.name, a.rows, a.cols, a.nnz, a.shift, a.relu) == (b.name, b.rows, b.cols, b.nnz, b.shift, b.relu)
        assert (a.in_frac_bits, a.weight_frac_bits, a.out_frac_bits) == (b.in_frac_bits, b.weight_frac_bits, b.out_frac_bits)
        assert np.array_equal(a.codebook, b.codebook) and np.array_equal(a.bias, b.bias)
        for s, t in zip(a.slices, b.slices):
            assert np.array_equal(s.ptr, t.ptr) and np.array_equal(s.v, t.v) and np.array_equal(s.z, t.z)
    x = rng.integers(-500, 500, (4, 12)).astype(np.int16)
    assert np.array_equal(p.run_golden(x), q.run_golden(x))


def test_manifest_lists_every_file_with_its_sha256(rng, tmp_path):
    p = P.pack_matrix(random_matrix(rng, 9, 5), 2)
    man = write_pack(p, tmp_path / "pk")
    on_disk = {str(f.relative_to(tmp_path / "pk")) for f in (tmp_path / "pk").rglob("*") if f.is_file()}
    assert set(man["files"]) | {"manifest.json"} == on_disk
    for name, digest in man["files"].items():
        assert hashlib.sha256((tmp_path / "pk" / name).read_bytes()).hexdigest() == digest
    assert json.loads((tmp_path / "pk" / "manifest.json").read_text()) == man


def test_manifest_fields(rng, tmp_path):
    w = random_matrix(rng, 9, 5)
    man = write_pack(P.pack_matrix(w, 2, shift=4, relu=True), tmp_path / "pk")
    assert (man["format"], man["version"], man["pes"], man["pointer_bits"]) == ("sparsa-eie-pack", 1, 2, 16)
    assert man["input"] == {"cols": 5, "frac_bits": None}
    assert man["layout"]["entry_v_bits"] == [3, 0] and man["layout"]["entry_z_bits"] == [7, 4]
    (ml,) = man["layers"]
    assert ml["nnz"] == np.count_nonzero(w) and ml["rows_per_pe"] == [5, 4]
    assert (ml["shift"], ml["relu"], ml["out_frac_bits"]) == (4, True, None)
    assert ml["pe_images"][1] == {"pe": 1, "spm": "layer0/pe001.spm", "ptr_even": "layer0/pe001.ptr_even",
                                  "ptr_odd": "layer0/pe001.ptr_odd", "bias": "layer0/pe001.bias"}
    assert ml["codebook_image"] == "layer0/codebook" and len(ml["codebook"]) == 16


def test_all_four_formats_hold_the_same_words(rng, tmp_path):
    p = P.pack_matrix(random_matrix(rng, 40, 9), 3, bias=rng.integers(-9, 9, 40))
    man = write_pack(p, tmp_path / "pk")
    bits = man["image_bits"]
    for im in man["layers"][0]["pe_images"]:
        for kind in ("spm", "ptr_even", "ptr_odd", "bias"):
            words = [images.read_image(tmp_path / "pk" / f"{im[kind]}.{fmt}", bits[kind]) for fmt in images.FORMATS]
            n = words[3].size                                  # .bin is exact; .coe pads empty to 1
            for w in words[:3]:
                assert np.array_equal(w[:n], words[3])
    cb = images.read_image(tmp_path / "pk/layer0/codebook.hex", 16, signed=True)
    assert np.array_equal(cb, p.layers[0].codebook)


def test_hex_lines_have_fixed_width(rng, tmp_path):
    write_pack(P.pack_matrix(random_matrix(rng, 30, 9), 2), tmp_path / "pk")
    lines = (tmp_path / "pk/layer0/pe000.spm.hex").read_text().splitlines()
    assert lines and all(len(l) == 16 for l in lines)
    assert all(len(l) == 4 for l in (tmp_path / "pk/layer0/pe000.ptr_odd.hex").read_text().splitlines())
    assert all(len(l) == 8 for l in (tmp_path / "pk/layer0/pe000.bias.hex").read_text().splitlines())


def test_pointers_wider_than_16_bits_when_a_pe_holds_over_65535_entries(tmp_path):
    w = np.ones((70000, 1), np.int16)
    p = P.pack_matrix(w, 1)
    assert p.pointer_bits == 17
    write_pack(p, tmp_path / "pk")
    assert (tmp_path / "pk/layer0/pe000.ptr_odd.hex").read_text() == "11170\n"   # 70000 entries
    assert np.array_equal(P.unpack(load_pack(tmp_path / "pk"))["layer0.weight"], w)


def test_existing_pack_is_replaced_whole(rng, tmp_path):
    write_pack(P.pack_matrix(random_matrix(rng, 9, 5), 4), tmp_path / "pk")
    write_pack(P.pack_matrix(random_matrix(rng, 9, 5), 1), tmp_path / "pk")
    assert not (tmp_path / "pk/layer0/pe003.spm.hex").exists()
    assert load_pack(tmp_path / "pk").pes == 1


def test_failed_write_leaves_nothing_behind(rng, tmp_path, monkeypatch):
    calls = []

    real = images.render_all

    def failing(words, bits, formats):
        calls.append(bits)
        if len(calls) > 5:
            raise OSError("disk full")
        return real(words, bits, formats)

    monkeypatch.setattr(images, "render_all", failing)
    with pytest.raises(OSError):
        write_pack(P.pack_matrix(random_matrix(rng, 9, 5), 2), tmp_path / "pk")
    assert list(tmp_path.iterdir()) == []


def test_changed_file_fails_its_sha256(rng, tmp_path):
    write_pack(P.pack_matrix(random_matrix(rng, 9, 5), 2), tmp_path / "pk")
    f = tmp_path / "pk/layer0/pe001.spm.coe"
    f.write_bytes(f.read_bytes() + b"\n")
    with pytest.raises(UserError, match=r"pe001\.spm\.coe: sha256"):
        load_pack(tmp_path / "pk")
    load_pack(tmp_path / "pk", verify=False)          # the .bin images are intact


def test_missing_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "pk").mkdir()
    with pytest.raises(UserError, match="manifest.json"):
        load_pack(tmp_path / "pk")


def test_missing_image_is_named(rng, tmp_path):
    write_pack(P.pack_matrix(random_matrix(rng, 9, 5), 2), tmp_path / "pk")
    (tmp_path / "pk/layer0/pe000.bias.bin").unlink()
    with pytest.raises(UserError, match=r"pe000\.bias\.bin: file: expected present"):
        load_pack(tmp_path / "pk")


def test_manifest_with_a_malformed_field_is_refused(rng, tmp_path):
    write_pack(P.pack_matrix(random_matrix(rng, 9, 5), 2), tmp_path / "pk")
    man = json.loads((tmp_path / "pk/manifest.json").read_text())
    man["files"] = ["layer0/codebook.hex"]
    (tmp_path / "pk/manifest.json").write_text(json.dumps(man))
    with pytest.raises(UserError, match="manifest.json: files: expected a JSON object, found"):
        load_pack(tmp_path / "pk")
