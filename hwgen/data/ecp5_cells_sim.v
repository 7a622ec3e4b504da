// Simulation model of the Lattice ECP5 MULT18X18D (hwgen/hdl/dsp.py), written by hwgen from the
// ECP5 sysDSP documentation (Lattice TN1267): Yosys ships this cell only as a black box.
//
// Modelled: the 18x18 multiplier with SIGNEDA/SIGNEDB, the A and B input registers and the
// output register, each either off ("NONE") or clocked by CLK0 with its own clock enable (one of
// CE0..CE3) and synchronous reset RST0 (A and B registered both or neither). SIGNEDA/SIGNEDB act unregistered: hwgen ties
// them to constants, where registering them changes nothing. Anything else (pipeline and C
// registers, other clocks, asynchronous reset, shift-in sources, cascade outputs) is refused when
// the simulation starts, so a netlist that uses it cannot pass for checked.
// verilator lint_off UNUSEDSIGNAL
// verilator lint_off UNUSEDPARAM
module MULT18X18D (
    input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35
);
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
        if (REG_INPUTC_CLK != "NONE" || REG_PIPELINE_CLK != "NONE")
            $fatal(1, "MULT18X18D model: C and pipeline registers are not modelled");
        if (REG_INPUTA_CLK != REG_INPUTB_CLK
                || (REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0")
                || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0")
            $fatal(1, "MULT18X18D model: only A and B input registers both off or both on CLK0, sync RST0");
        if ((REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0")
                || REG_OUTPUT_RST != "RST0" || RESETMODE != "SYNC")
            $fatal(1, "MULT18X18D model: only an output register on CLK0, sync RST0");
        if (!(REG_INPUTA_CE == "CE0" || REG_INPUTA_CE == "CE1" || REG_INPUTA_CE == "CE2" || REG_INPUTA_CE == "CE3")
                || !(REG_INPUTB_CE == "CE0" || REG_INPUTB_CE == "CE1" || REG_INPUTB_CE == "CE2" || REG_INPUTB_CE == "CE3")
                || !(REG_OUTPUT_CE == "CE0" || REG_OUTPUT_CE == "CE1" || REG_OUTPUT_CE == "CE2" || REG_OUTPUT_CE == "CE3"))
            $fatal(1, "MULT18X18D model: a register's clock enable must be one of CE0..CE3");
        if (MULT_BYPASS != "DISABLED" || CAS_MATCH_REG != "FALSE")
            $fatal(1, "MULT18X18D model: multiplier bypass and cascade matching are not modelled");
    end

    wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};

    // The clock enable each register was given (REG_*_CE).
    wire ce_a = REG_INPUTA_CE == "CE1" ? CE1 : REG_INPUTA_CE == "CE2" ? CE2
              : REG_INPUTA_CE == "CE3" ? CE3 : CE0;
    wire ce_b = REG_INPUTB_CE == "CE1" ? CE1 : REG_INPUTB_CE == "CE2" ? CE2
              : REG_INPUTB_CE == "CE3" ? CE3 : CE0;
    wire ce_out = REG_OUTPUT_CE == "CE1" ? CE1 : REG_OUTPUT_CE == "CE2" ? CE2
                : REG_OUTPUT_CE == "CE3" ? CE3 : CE0;

    reg [17:0] a_reg = 18'd0, b_reg = 18'd0;
    always @(posedge CLK0)
        if (RST0)
            a_reg <= 18'd0;
        else if (ce_a)
            a_reg <= a_in;
    always @(posedge CLK0)
        if (RST0)
            b_reg <= 18'd0;
        else if (ce_b)
            b_reg <= b_in;
    wire [17:0] a = REG_INPUTA_CLK == "CLK0" ? a_reg : a_in;
    wire [17:0] b = REG_INPUTB_CLK == "CLK0" ? b_reg : b_in;

    // Each operand is signed when its SIGNED input is high, else unsigned.
    wire signed [18:0] a_ext = {SIGNEDA & a[17], a};
    wire signed [18:0] b_ext = {SIGNEDB & b[17], b};
    wire signed [37:0] full = a_ext * b_ext;
    wire [35:0] product = full[35:0];

    reg [35:0] out_reg = 36'd0;
    always @(posedge CLK0)
        if (RST0)
            out_reg <= 36'd0;
        else if (ce_out)
            out_reg <= product;
    wire [35:0] p = REG_OUTPUT_CLK == "CLK0" ? out_reg : product;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
endmodule
// verilator lint_on UNUSEDPARAM
// verilator lint_on UNUSEDSIGNAL

// Simulation model of the Lattice ECP5 DP16KD (hwgen/hdl/bram.py), written by hwgen from the ECP5
// memory documentation (Lattice TN1264): Yosys ships this cell only as a black box.
//
// Modelled: both ports with the same data width (1, 2, 4, 9 or 18 bits; 16384, 8192, 4096, 2048
// or 1024 words), word address AD[13:SHIFT] (SHIFT 0, 1, 2, 3, 4), the 18-bit width's byte
// write enables on AD0 (bits 8..0) and AD1 (bits 17..9); a clock edge with CE writes DI (WE
// high, the port's output holding, WRITEMODE "NORMAL") or reads the word into the port's output
// latch; REGMODE "OUTREG" adds the output register (enabled by OCE), so data comes two edges
// after the address; RST clears latch and register at a clock edge (RESETMODE "SYNC"). The
// contents start as 0 (no INITVAL). A read of a word the other port writes in the same cycle
// returns the old word here and is undefined on the device. Anything else (chip-select
// decoding, other write modes, asynchronous reset, different widths per port) is refused when
// the simulation starts.
// verilator lint_off UNUSEDSIGNAL
// verilator lint_off UNUSEDPARAM
module DP16KD (
    input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input CEA, OCEA, CLKA, WEA, RSTA,
    input CSA2, CSA1, CSA0,
    output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input CEB, OCEB, CLKB, WEB, RSTB,
    input CSB2, CSB1, CSB0,
    output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter GSR = "ENABLED";

    localparam integer W = DATA_WIDTH_A;
    localparam integer SHIFT = W == 18 ? 4 : W == 9 ? 3 : W == 4 ? 2 : W == 2 ? 1 : 0;
    localparam integer WORDS = 16384 >> SHIFT;

    initial begin
        if (DATA_WIDTH_B != W || !(W == 1 || W == 2 || W == 4 || W == 9 || W == 18))
            $fatal(1, "DP16KD model: both ports must have one data width of 1, 2, 4, 9 or 18");
        if ((REGMODE_A != "NOREG" && REGMODE_A != "OUTREG")
                || (REGMODE_B != "NOREG" && REGMODE_B != "OUTREG"))
            $fatal(1, "DP16KD model: REGMODE must be NOREG or OUTREG");
        if (RESETMODE != "SYNC" || WRITEMODE_A != "NORMAL" || WRITEMODE_B != "NORMAL"
                || CSDECODE_A != "0b000" || CSDECODE_B != "0b000")
            $fatal(1, "DP16KD model: only RESETMODE SYNC, WRITEMODE NORMAL, CSDECODE 0b000");
    end

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [13:0] word_a = ada >> SHIFT;
    wire [13:0] word_b = adb >> SHIFT;
    // The bits a write changes: the 18-bit width's two byte enables, else the whole word.
    wire [17:0] mask_a = W == 18 ? {{9{ADA1}}, {9{ADA0}}} : {18{1'b1}};
    wire [17:0] mask_b = W == 18 ? {{9{ADB1}}, {9{ADB0}}} : {18{1'b1}};

    reg [17:0] mem [0:WORDS-1];
    integer i;
    initial for (i = 0; i < WORDS; i = i + 1) mem[i] = 18'd0;

    reg [17:0] latch_a = 18'd0, latch_b = 18'd0, out_a = 18'd0, out_b = 18'd0;
    always @(posedge CLKA) begin
        if (RSTA) begin
            latch_a <= 18'd0;
            out_a <= 18'd0;
        end else begin
            if (CEA) begin
                if (WEA)
                    mem[word_a] <= (mem[word_a] & ~mask_a) | (dia & mask_a);
                else
                    latch_a <= mem[word_a];
            end
            if (OCEA)
                out_a <= latch_a;
        end
    end
    always @(posedge CLKB) begin
        if (RSTB) begin
            latch_b <= 18'd0;
            out_b <= 18'd0;
        end else begin
            if (CEB) begin
                if (WEB)
                    mem[word_b] <= (mem[word_b] & ~mask_b) | (dib & mask_b);
                else
                    latch_b <= mem[word_b];
            end
            if (OCEB)
                out_b <= latch_b;
        end
    end
    wire [17:0] doa = (REGMODE_A == "OUTREG" ? out_a : latch_a) & {{(18 - W){1'b0}}, {W{1'b1}}};
    wire [17:0] dob = (REGMODE_B == "OUTREG" ? out_b : latch_b) & {{(18 - W){1'b0}}, {W{1'b1}}};
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
endmodule
// verilator lint_on UNUSEDPARAM
// verilator lint_on UNUSEDSIGNAL

// Simulation model of the Lattice ECP5 TRELLIS_FF (hwgen/hdl/bram.py: a registered write port's
// flip-flops), as Yosys's techlibs/lattice/common_sim.vh describes it, for the one configuration
// hwgen instantiates: clocked by CLK, always enabled (CEMUX "1"), LSR a synchronous reset to 0
// (LSRMUX "LSR", SRMODE "LSR_OVER_CE", REGSET "RESET"), starting at 0. Anything else is refused
// when the simulation starts.
// verilator lint_off UNUSEDSIGNAL
// verilator lint_off UNUSEDPARAM
module TRELLIS_FF (input CLK, LSR, CE, DI, M, output reg Q);
    parameter GSR = "ENABLED";
    parameter CEMUX = "1";
    parameter CLKMUX = "CLK";
    parameter LSRMUX = "LSR";
    parameter SRMODE = "LSR_OVER_CE";
    parameter REGSET = "RESET";
    parameter LSRMODE = "LSR";

    initial begin
        if (CEMUX != "1" || CLKMUX != "CLK" || LSRMUX != "LSR" || SRMODE != "LSR_OVER_CE"
                || REGSET != "RESET" || LSRMODE != "LSR")
            $fatal(1, "TRELLIS_FF model: only CEMUX 1, CLKMUX CLK, LSRMUX LSR, SRMODE LSR_OVER_CE, REGSET RESET, LSRMODE LSR");
        Q = 1'b0;
    end
    always @(posedge CLK)
        Q <= LSR ? 1'b0 : DI;
endmodule
// verilator lint_on UNUSEDPARAM
// verilator lint_on UNUSEDSIGNAL
