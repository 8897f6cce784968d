"""Import a float model (ONNX, or a PyTorch state dict saved as .npz) into sparsa's formats.

``sparsa import model.onnx -o model.npz`` prints the layers it found and writes: a float MLP
``.npz`` (``<name>.weight``/``.bias``, what ``sparsa compress`` takes), a sparsa-model graph
for CNNs, or ``nn.LSTM`` state-dict arrays for an LSTM. Unsupported ops are an error naming
the node and the op. Supported ONNX ops: Gemm, MatMul, Relu, LeakyRelu, Flatten, Conv, MaxPool,
AveragePool, Pad, Resize, Upsample, Concat, Add, LSTM, ... (details: docs/import.md). A model
with several outputs is written with one output, the outputs flattened and joined; a line
after the table says which values are which.
"""

from pathlib import Path

from rich.console import Console
from rich.table import Table

from sparsa.sw.errors import user_error
from sparsa.sw.model.importer import import_model
from sparsa.sw.fileio import check_outputs

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("model", help="model file: .onnx, or a state-dict .npz")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="where to write sparsa's format")
    p.add_argument("--input-shape", default=None, metavar="C,H,W",
                   help="input shape, for a Conv2d state dict or an ONNX file without static sizes")


# Input-shape limits: each size fits 16 bits, the whole input 2^28 values (256 MiB at int8),
# far beyond what the CNN engine's buffers and a host's memory make sensible.
MAX_DIM = 65535
MAX_INPUT_VALUES = 1 << 28


def _shape(text):
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        dims = []
    if len(dims) != 3 or min(dims) < 1:
        raise user_error(None, "--input-shape", "three positive integers C,H,W", repr(text))
    if max(dims) > MAX_DIM:
        raise user_error(None, "--input-shape", f"sizes in 1..{MAX_DIM}", f"{text!r} ({max(dims)})")
    if dims[0] * dims[1] * dims[2] > MAX_INPUT_VALUES:
        raise user_error(None, "--input-shape", f"at most 2^28 = {MAX_INPUT_VALUES} values (C x H x W)",
                         f"{text!r} ({dims[0] * dims[1] * dims[2]} values)")
    return dims


def run(args):
    check_outputs([("-o", args.output)], [("MODEL", args.model)])
    shape = _shape(args.input_shape) if args.input_shape else None
    if Path(args.output).suffix.lower() != ".npz":
        raise user_error(None, "-o", "an output path ending in .npz", args.output)
    model = import_model(args.model, input_shape=shape)
    table = Table(title=f"{args.model}: {model.kind}")
    for col in ("layer", "op", "output", "parameters"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for name, op, out, n in model.summary():
        table.add_row(name, op, out, f"{n:,}")
    Console(highlight=False).print(table)
    if model.output_note():
        print(model.output_note())
    model.save(args.output)
    nxt = {"mlp": f"sparsa compress {args.output} --density D --bits 4",
           "cnn": "the CNN engine (sparsa's graph format)", "lstm": "the LSTM engine (nn.LSTM state dict)"}
    print(f"wrote {args.output} ({model.kind}); next: {nxt[model.kind]}")
    return 0
