"""Open a local HTML file in headless Chromium (Debian's, installed by `make setup`) and return
the DOM after the page's load handlers ran."""

import subprocess
import tempfile

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def dump_dom(path, budget_ms=3000):
    with tempfile.TemporaryDirectory(prefix="sparsa-chromium-") as profile:
        res = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                              f"--virtual-time-budget={budget_ms}", "--dump-dom", f"file://{path}"],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout
