"""The open-flow boards as complete systems: an amaranth-boards platform per board (pins,
oscillator, UART, LEDs, button), the clock plan (a PLL setting for the wanted system clock), and
the UART divisor of the host link.

A board is a small class on top of its amaranth-boards platform, as amaranth-boards writes
boards: nothing here copies a pin. :func:`prepare` elaborates
:class:`sparsa.hw.board_top.BoardTop` for a board and writes what the open flow reads:
``top.il`` (the system), ``sparsa_eie_pe.v`` (the PE module every PE instantiates) and the
platform's constraints (``top.pcf`` / ``top.lpf``).
"""

from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from sparsa.sw.errors import user_error

from sparsa.boards.pll import ecp5_pll, ice40_pll

__all__ = ["SYSTEMS", "ICEBreaker", "ULX3S85F", "uart_divisor", "prepare", "harness_pins", "fastest_clock",
           "MAX_BAUD_ERROR", "MARGIN", "cnn_memory_bytes"]

# A UART receiver that samples each bit's middle tolerates about 5% of timing error over a
# 10-bit frame shared between both ends; 1.5% from the divisor leaves the rest to the other end.
MAX_BAUD_ERROR = 0.015


class ICEBreaker(ICEBreakerPlatform):
    """1BitSquared iCEBreaker: iCE40 UP5K, 12 MHz oscillator, FT2232H (channel B as the UART,
    3 Mbaud; the chip's UART runs to 12 Mbaud, 3 Mbaud is what the 24 MHz system clock divides
    exactly), user button as reset, red and green LEDs."""
    board = "icebreaker"
    family, nextpnr_device, nextpnr_package = "ice40", "up5k", "sg48"
    oscillator, oscillator_mhz, button, n_leds = "clk12", 12, "button", 2
    uart_chip, baud, default_mhz = "FT2232H", 3_000_000, 24
    capacity = {"luts": 5280, "ffs": 5280, "dsps": 8, "brams": 30}
    # EIE's own PE (one multiplier, the serial sparse-matrix reader): the pipelined reader and a
    # second multiplier do not fit the UP5K next to the link, and behind a 3 Mbaud UART (about a
    # millisecond an input) the microseconds of compute they save do not show. The codebooks in
    # a block RAM (18 cycles a layer to fetch the current one): in flip-flops, with their
    # multiplexer, the two-layer digits MLP's did not fit.
    pe_options = {"macs": 1, "reader": "serial", "queue_depth": 2, "codebooks": "memory"}
    # The CNN engine's 3x3 convolver alone is 9 multipliers a lane (the UP5K has 8 DSPs) and its
    # buffers outgrow 30 block RAMs: no CNN system on this board.
    cnn_mem_limit = None

    def pll_setting(self, mhz):
        return ice40_pll(self.oscillator_mhz, mhz)

    def pll_block(self, setting):
        from sparsa.hw.board_top import Ice40Pll
        return Ice40Pll(setting)


class ULX3S85F(ULX3S_85F_Platform):
    """Radiona ULX3S with the LFE5U-85F (speed grade 6), 25 MHz oscillator, FT231X USB UART at
    3 Mbaud (its highest rate), FIRE 1 button (the one next to the LEDs' end) as reset, LEDs 0-2."""
    board = "ulx3s-85f"
    family, nextpnr_device, nextpnr_package = "ecp5", "85k", "CABGA381"
    oscillator, oscillator_mhz, button, n_leds = "clk25", 25, "button_fire", 3
    uart_chip, baud, default_mhz = "FT231X", 3_000_000, 60
    capacity = {"luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208}
    pe_options = {}         # the default PE: two multipliers, the pipelined reader
    # The CNN system's DRAM is block RAM (no SDRAM controller yet): at most half the device's
    # 208 DP16KD (256 KiB is 128 of them), the rest for the engine's own buffers.
    cnn_mem_limit = 256 * 1024

    def pll_setting(self, mhz):
        return ecp5_pll(self.oscillator_mhz, mhz)

    def pll_block(self, setting):
        from sparsa.hw.board_top import Ecp5Pll
        return Ecp5Pll(setting, self.oscillator_mhz)


SYSTEMS = {cls.board: cls for cls in (ICEBreaker, ULX3S85F)}


def harness_pins(board):
    """The package pins of the size-and-speed harness (``clk``, ``rx``, ``tx``, ``led``), read from
    the board's amaranth-boards resources: the oscillator, the UART and LED 0."""
    platform = SYSTEMS[board]()

    def site(name, sub=None):
        res = platform.lookup(name, 0)
        ios = res.ios if sub is None else next(s for s in res.ios if s.name == sub).ios
        return next(io for io in ios if hasattr(io, "names")).names[0]
    return {"clk": site(platform.oscillator), "rx": site("uart", "rx"), "tx": site("uart", "tx"), "led": site("led")}


def uart_divisor(clock_mhz, baud, where="--clock-mhz"):
    """``(divisor, relative error)``: system clock cycles per UART bit at ``clock_mhz``; a
    UserError if the nearest divisor misses ``baud`` by more than :data:`MAX_BAUD_ERROR`."""
    divisor = max(1, round(clock_mhz * 1e6 / baud))
    error = clock_mhz * 1e6 / divisor / baud - 1
    if divisor < 4 or abs(error) > MAX_BAUD_ERROR:
        raise user_error(None, where, f"a clock that divides {baud} baud to within {MAX_BAUD_ERROR:.1%} with at "
                         f"least 4 cycles a bit", f"{clock_mhz:g} MHz ({divisor} cycles a bit, {error:+.2%})")
    return divisor, error


def prepare(cfg, board, clock_mhz, out, memory_map=None, mem_bytes=None):
    """Write the board system's sources and constraints into ``out``; returns a dict of facts
    for the report: requested and PLL clock, UART divisor and baud error, constraint file.
    ``memory_map``: the model the system holds from power-up (``--preload``); ``mem_bytes``: the
    CNN system (``cfg`` a CNNConfig) with this much on-chip DRAM."""
    from amaranth.back import verilog
    from sparsa.hw.board_top import BoardTop
    from sparsa.hw.eie.pe import ProcessingElement
    from sparsa.hw.eie.top import EIEArray
    from sparsa.hw.eie.verilog import fast_memory_init
    platform = SYSTEMS[board]()
    clock_mhz = clock_mhz or platform.default_mhz
    if not 1 <= clock_mhz <= 500:
        raise user_error(None, "--clock-mhz", "1 to 500 MHz", f"{clock_mhz:g}")
    try:
        setting = platform.pll_setting(clock_mhz)
    except ValueError as e:
        raise user_error(None, "--clock-mhz", f"a frequency the {platform.family} PLL makes from "
                         f"{platform.oscillator_mhz} MHz", f"{clock_mhz:g} MHz ({e})") from None
    pll_mhz = setting.f_out_mhz
    divisor, error = uart_divisor(pll_mhz, platform.baud)
    pe_module = None if mem_bytes is not None else f"{EIEArray.PE_MODULE}.v"
    with fast_memory_init():
        if pe_module:
            platform.add_file(pe_module, verilog.convert(ProcessingElement(cfg), name=EIEArray.PE_MODULE,
                                                         emit_src=False))
        plan = platform.prepare(BoardTop(cfg, divisor, pll=platform.pll_block(setting), clock=platform.oscillator,
                                         button=platform.button, n_leds=platform.n_leds, memory_map=memory_map,
                                         mem_bytes=mem_bytes),
                                name="top")
    constraints = "top.pcf" if platform.family == "ice40" else "top.lpf"
    for name in ("top.il", constraints) + ((pe_module,) if pe_module else ()):
        (out / name).write_bytes(plan.files[name].encode() if isinstance(plan.files[name], str) else plan.files[name])
    return {"constraints": constraints, "pe_module": pe_module,
            "clock": {"requested_mhz": clock_mhz, "pll_mhz": round(pll_mhz, 4), "oscillator_mhz": platform.oscillator_mhz},
            "link": {"uart": platform.uart_chip, "baud": platform.baud, "divisor": divisor,
                     "baud_error": round(error, 5),
                     # 8N1: ten bit times a byte. The link's ceiling; what a run gets (round
                     # trips, polls, the USB bridge) is in sparsa run --engine board's report.
                     "wire_bytes_per_s": platform.baud // 10},
            "leds": platform.n_leds}


MARGIN = 1.1


def fastest_clock(board, achieved_mhz):
    """The highest system clock, in MHz, with :data:`MARGIN` below ``achieved_mhz`` (nextpnr's
    Fmax of a link build) that the board's PLL makes exactly and that divides its baud rate
    exactly; ``None`` if there is none."""
    platform = SYSTEMS[board]()
    for divisor in range(int(achieved_mhz / MARGIN * 1e6 // platform.baud), 3, -1):
        mhz = platform.baud * divisor / 1e6
        try:
            if abs(platform.pll_setting(mhz).f_out_mhz - mhz) < 1e-9:
                return mhz
        except ValueError:
            continue
    return None


def check_link_options(top, *, swappable, pnr_mhz, memories, clock_mhz, preload):
    """The harness-only options refused for a link build, and the link-only ones for the
    harness, with one line each."""
    if top != "link":
        if clock_mhz is not None:
            raise user_error(None, "--clock-mhz", "--top link (the harness runs from the oscillator)", f"{clock_mhz:g}")
        if preload:
            raise user_error(None, "--preload", "--top link (the harness, which --swappable, --pnr-mhz and --memories "
                             "select, always holds the pack's weights)", f"--top {top}")
        return
    if swappable:
        raise user_error(None, "--swappable", "--top harness (a link build loads weights over the link, or holds "
                         "them from power-up with --preload)", "--top link")
    if pnr_mhz is not None:
        raise user_error(None, "--pnr-mhz", "--top harness (a link build places and routes for its PLL clock: "
                         "--clock-mhz)", f"{pnr_mhz:g}")
    if memories != "auto":
        raise user_error(None, "--memories", "auto with --top link", memories)


def cnn_memory_bytes(prog, board, where):
    """The on-chip DRAM of the CNN board system for ``prog`` (a compiled CNN program) on
    ``board``: the power of two at or above its ``dram_size`` (4 KiB at least); a one-line
    UserError naming ``where`` if the board has no CNN system or the pack needs more."""
    system = SYSTEMS[board]
    if system.cnn_mem_limit is None:
        raise user_error(where, "engine", "an EIE pack on the iCEBreaker (the CNN engine does not fit the UP5K: "
                         "9 multipliers a lane, 8 DSPs); a CNN pack runs on the ulx3s-85f", "a CNN pack")
    size = 4096
    while size < prog.dram_size:
        size *= 2
    if size > system.cnn_mem_limit:
        raise user_error(where, "dram_size", f"at most {system.cnn_mem_limit} bytes (the {board}'s block RAM for "
                         f"the CNN system's DRAM)", f"{prog.dram_size} (too big by {prog.dram_size - system.cnn_mem_limit})")
    return size
