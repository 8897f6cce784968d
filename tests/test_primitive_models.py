"""sparsa's behavioural model of the ECP5 MULT18X18D equals 18 x 18 integer multiplication.

The model (sim/models/MULT18X18D.v) is what lets the ``multiplier="ecp5"`` EIE datapath be
simulated against the golden model; here it is checked on its own, under Icarus, against
products computed in Python: every combination of SIGNEDA/SIGNEDB, the extreme operands, and
the two register set-ups (all registers bypassed; input A/B and output registers on CLK0, as
sparsa instantiates it: two cycles of latency, clock enable and synchronous reset honoured).
"""

import subprocess

import numpy as np
import pytest

from sparsa.sim.eie.runner import primitive_models

SEED = 1818
EXTREMES = [0, 1, 2, 0x1FFFF, 0x20000, 0x3FFFF, 0x3FFFE, 0x00FFF, 0x2AAAA, 0x15555]

_TB = """
`timescale 1ns / 1ps
module tb;
    localparam N = @N@;
    reg clk = 0, ce = 1, rst = 0;
    reg [17:0] a, b;
    reg sa, sb;
    wire [35:0] p_comb, p_reg;
    wire sp_comb, sp_reg;
    reg [37:0] vec [0:N-1];
    reg [1:0] ctl [0:N-1];
    integer i, f;
    MULT18X18D comb (%s .SIGNEDA(sa), .SIGNEDB(sb), .SOURCEA(1'b0), .SOURCEB(1'b0),
                     .CLK0(clk), .CE0(ce), .RST0(rst), %s .SIGNEDP(sp_comb));
    MULT18X18D #(.REG_INPUTA_CLK("CLK0"), .REG_INPUTB_CLK("CLK0"), .REG_OUTPUT_CLK("CLK0"),
                 .REG_PIPELINE_CLK("NONE"), .GSR("DISABLED"))
        regd (%s .SIGNEDA(sa), .SIGNEDB(sb), .SOURCEA(1'b0), .SOURCEB(1'b0),
              .CLK0(clk), .CE0(ce), .RST0(rst), %s .SIGNEDP(sp_reg));
    initial begin
        $readmemh("vec.hex", vec);
        $readmemh("ctl.hex", ctl);
        f = $fopen("out.txt", "w");
        for (i = 0; i < N; i = i + 1) begin
            {sa, sb, a, b} = vec[i];
            {ce, rst} = ctl[i];
            #1;
            $fwrite(f, "%%h %%h %%b %%b\\n", p_comb, p_reg, sp_comb, sp_reg);
            clk = 1; #1; clk = 0;
        end
        $fclose(f);
        $finish;
    end
endmodule
"""


def _ports(name, signal, width):
    return " ".join(f".{name}{i}({signal}[{i}])," for i in range(width))


def _expected(a, b, sa, sb):
    sx = lambda v, s: v - (1 << 18) if s and v >> 17 else v
    return (sx(a, sa) * sx(b, sb)) % (1 << 36)


def _simulate(tmp_path, a, b, sa, sb, ce, rst):
    n = len(a)
    tb = _TB.replace("@N@", str(n)) % (
        _ports("A", "a", 18) + _ports("B", "b", 18), _ports("P", "p_comb", 36),
        _ports("A", "a", 18) + _ports("B", "b", 18), _ports("P", "p_reg", 36))
    (tmp_path / "tb.v").write_text(tb)
    (tmp_path / "vec.hex").write_text("".join(
        f"{(int(sa[i]) << 37) | (int(sb[i]) << 36) | (int(a[i]) << 18) | int(b[i]):010x}\n" for i in range(n)))
    (tmp_path / "ctl.hex").write_text("".join(f"{(int(ce[i]) << 1) | int(rst[i]):x}\n" for i in range(n)))
    model = primitive_models("  MULT18X18D #(")
    assert [m.name for m in model] == ["MULT18X18D.v"]
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "tb.v", str(model[0])], cwd=tmp_path, check=True)
    subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True, capture_output=True)
    rows = [line.split() for line in (tmp_path / "out.txt").read_text().splitlines()]
    assert len(rows) == n
    return ([int(r[0], 16) for r in rows], [int(r[1], 16) for r in rows],
            [int(r[2]) for r in rows], [int(r[3]) for r in rows])


def _operands(rng, n):
    a = np.concatenate([np.repeat(EXTREMES, len(EXTREMES)), rng.integers(0, 1 << 18, n)])
    b = np.concatenate([np.tile(EXTREMES, len(EXTREMES)), rng.integers(0, 1 << 18, n)])
    return a, b


@pytest.mark.parametrize("sa,sb", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_mult18x18d_model_combinational_products(tmp_path, sa, sb):
    print(f"seed={SEED}")
    rng = np.random.default_rng(SEED + 2 * sa + sb)
    a, b = _operands(rng, 300)
    n = len(a)
    p_comb, _, sp, _ = _simulate(tmp_path, a, b, [sa] * n, [sb] * n, [1] * n, [0] * n)
    assert p_comb == [_expected(int(x), int(y), sa, sb) for x, y in zip(a, b)]
    assert set(sp) == {sa | sb}


def test_mult18x18d_model_registered_latency_enable_and_reset(tmp_path):
    # The configuration sparsa instantiates: input A/B and output registers on CLK0. With the
    # enable high the product of the operands presented at edge k appears after edge k+1.
    # Each register stage is modelled in Python: enable low holds, reset clears.
    print(f"seed={SEED}")
    rng = np.random.default_rng(SEED)
    a, b = _operands(rng, 400)
    n = len(a)
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    ce = (rng.random(n) < 0.8).astype(int)
    rst = (rng.random(n) < 0.05).astype(int)
    _, p_reg, _, _ = _simulate(tmp_path, a, b, sa, sb, ce, rst)
    in_reg, out_reg, want = (0, 0, 0, 0), 0, []
    for i in range(n):
        want.append(out_reg)        # sampled before edge i
        prod = _expected(*in_reg)
        if rst[i]:
            in_reg, out_reg = (0, 0, 0, 0), 0
        elif ce[i]:
            in_reg, out_reg = (int(a[i]), int(b[i]), int(sa[i]), int(sb[i])), prod
    assert p_reg == want
    # Sanity: with the enable always high the latency is two edges.
    assert sum(p != 0 for p in p_reg) > n // 2
