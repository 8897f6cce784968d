// Behavioural model of the Lattice ECP5 sysDSP multiplier MULT18X18D, for simulating the
// Verilog that sparsa generates with EIEConfig(multiplier="ecp5"). Yosys ships only a
// blackbox of this primitive (cells_bb_ecp5.v), so without a model the DSP path could not be
// checked against the golden model. Written for sparsa from the ECP5 sysDSP usage guide
// (Lattice FPGA-TN-02205); not Lattice's model.
//
// What it models: an 18 x 18 multiply, each operand signed (two's complement) when its
// SIGNEDA/SIGNEDB input is 1 and unsigned when 0, giving a 36-bit product on P; the optional
// input A and B registers (the sign controls travel with their operand), the pipeline
// register and the output register, each on the clock, clock enable and reset chosen by its
// REG_*_CLK / REG_*_CE / REG_*_RST parameter, with synchronous reset to zero.
//
// What it refuses (a $fatal at time 0 or when the input is seen): the shift-register and
// cascade inputs (SOURCEA/SOURCEB = 1), MULT_BYPASS, asynchronous reset, and the dynamic
// C input's registers. sparsa uses none of them; a user who does needs Lattice's model.
`timescale 1ns / 1ps
module MULT18X18D(
    A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
    P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0,
    SIGNEDP
);
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0;
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0;
    input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0;
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB;
    input CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0;
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0;
    output SIGNEDP;
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    initial begin
        if (MULT_BYPASS != "DISABLED") $fatal(1, "MULT18X18D model: MULT_BYPASS is not modelled");
        if (RESETMODE != "SYNC") $fatal(1, "MULT18X18D model: only RESETMODE=SYNC is modelled");
        if (REG_INPUTC_CLK != "NONE") $fatal(1, "MULT18X18D model: the C input register is not modelled");
    end
    always @(SOURCEA or SOURCEB)
        if (SOURCEA === 1'b1 || SOURCEB === 1'b1)
            $fatal(1, "MULT18X18D model: SOURCEA/SOURCEB = 1 (shift/cascade inputs) is not modelled");

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};

    // Clock, enable and reset of each register, picked by its parameters.
    function automatic pick_clk(input [8*4-1:0] name, input c0, c1, c2, c3);
        pick_clk = name == "CLK1" ? c1 : name == "CLK2" ? c2 : name == "CLK3" ? c3 : c0;
    endfunction
    function automatic pick_ce(input [8*3-1:0] name, input e0, e1, e2, e3);
        // An enable left unconnected (z) counts as enabled, as on the device.
        pick_ce = (name == "CE1" ? e1 : name == "CE2" ? e2 : name == "CE3" ? e3 : e0) !== 1'b0;
    endfunction
    function automatic pick_rst(input [8*4-1:0] name, input r0, r1, r2, r3);
        pick_rst = (name == "RST1" ? r1 : name == "RST2" ? r2 : name == "RST3" ? r3 : r0) === 1'b1;
    endfunction

    wire clk_a = pick_clk(REG_INPUTA_CLK, CLK0, CLK1, CLK2, CLK3);
    wire clk_b = pick_clk(REG_INPUTB_CLK, CLK0, CLK1, CLK2, CLK3);
    wire clk_p = pick_clk(REG_PIPELINE_CLK, CLK0, CLK1, CLK2, CLK3);
    wire clk_o = pick_clk(REG_OUTPUT_CLK, CLK0, CLK1, CLK2, CLK3);
    wire ce_a = pick_ce(REG_INPUTA_CE, CE0, CE1, CE2, CE3);
    wire ce_b = pick_ce(REG_INPUTB_CE, CE0, CE1, CE2, CE3);
    wire ce_p = pick_ce(REG_PIPELINE_CE, CE0, CE1, CE2, CE3);
    wire ce_o = pick_ce(REG_OUTPUT_CE, CE0, CE1, CE2, CE3);
    wire rst_a = pick_rst(REG_INPUTA_RST, RST0, RST1, RST2, RST3);
    wire rst_b = pick_rst(REG_INPUTB_RST, RST0, RST1, RST2, RST3);
    wire rst_p = pick_rst(REG_PIPELINE_RST, RST0, RST1, RST2, RST3);
    wire rst_o = pick_rst(REG_OUTPUT_RST, RST0, RST1, RST2, RST3);

    // Input registers: operand and its sign control.
    reg [18:0] a_q = 19'd0, b_q = 19'd0;
    always @(posedge clk_a) if (rst_a) a_q <= 19'd0; else if (ce_a) a_q <= {SIGNEDA, a};
    always @(posedge clk_b) if (rst_b) b_q <= 19'd0; else if (ce_b) b_q <= {SIGNEDB, b};
    wire [18:0] a_in = REG_INPUTA_CLK == "NONE" ? {SIGNEDA, a} : a_q;
    wire [18:0] b_in = REG_INPUTB_CLK == "NONE" ? {SIGNEDB, b} : b_q;

    // The product: extend each operand to 36 bits by its sign control, multiply mod 2^36.
    wire [35:0] a_ext = {{18{a_in[18] & a_in[17]}}, a_in[17:0]};
    wire [35:0] b_ext = {{18{b_in[18] & b_in[17]}}, b_in[17:0]};
    wire [35:0] product = a_ext * b_ext;
    wire product_signed = a_in[18] | b_in[18];

    reg [36:0] pipe_q = 37'd0, out_q = 37'd0;
    always @(posedge clk_p) if (rst_p) pipe_q <= 37'd0; else if (ce_p) pipe_q <= {product_signed, product};
    wire [36:0] pipe = REG_PIPELINE_CLK == "NONE" ? {product_signed, product} : pipe_q;
    always @(posedge clk_o) if (rst_o) out_q <= 37'd0; else if (ce_o) out_q <= pipe;
    wire [36:0] out = REG_OUTPUT_CLK == "NONE" ? pipe : out_q;

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = out[35:0];
    assign SIGNEDP = out[36];
endmodule
