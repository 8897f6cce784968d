"""What a board's runtime needs installed: the host runtimes import, load a pack and check it
with numpy, amaranth (the protocol's enums) and jsonschema (manifest validation) alone. A fresh
interpreter with every other heavy dependency blocked, so that docs/boards.md's install line
for a board image stays true."""

import subprocess
import sys
import textwrap

import numpy as np
from eie_cases import random_pack

from sparsa.sw.eie.pack_dir import write_pack

BLOCKED = ("scipy", "sklearn", "matplotlib", "onnx", "onnxruntime", "dask", "distributed", "rich", "cocotb",
           "cocotb_tools", "cocotbext", "hypothesis", "pytest")


def test_the_runtimes_need_only_numpy_amaranth_jsonschema_and_pyserial(tmp_path):
    print("seed=1301")
    write_pack(random_pack([(20, 17), (9, 20)], 2, 0.3, np.random.default_rng(1301)), tmp_path / "pk")
    code = textwrap.dedent(f"""
        import builtins, sys
        real = builtins.__import__
        def guard(name, *a, **k):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ImportError("blocked: " + name)
            return real(name, *a, **k)
        builtins.__import__ = guard
        import sparsa.runtime, sparsa.dma, sparsa.axidma, sparsa.mmio, sparsa.xdma, sparsa.link
        import sparsa.runtime_cnn
        from sparsa.sw.eie.pack_dir import load_pack
        from sparsa.sw.eie.memmap import build_memory_map
        from sparsa.sw.eie.protocol import load_sequence
        mm = build_memory_map(load_pack({str(tmp_path / "pk")!r}))
        print(len(list(load_sequence(mm))))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout) > 0
