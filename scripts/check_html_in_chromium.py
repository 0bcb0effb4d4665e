"""Check the HTML reports in a real headless browser: they render, sort and filter, with
no network.

    python scripts/check_html_in_chromium.py REPORT_DIR [AUDIT_DIR] [--screenshots DIR]

Needs Chromium from the OS packages (Debian: ``apt-get update && apt-get install -y
chromium``). For each page it starts a fresh headless Chromium (own throw-away profile, no
GPU, no background networking, component updates, sync or first-run) and:

1. loads ``worklist.html#selftest`` via ``file://`` and dumps the DOM after the scripts ran:
   the page's own self-test (see ``family_link.worklist``) sorts by date of birth both ways
   and filters by rule, severity and status, then writes ``data-ok="true"`` (with counts)
   into ``#selftest-result``;
2. loads ``audit.html`` (no scripts) and checks the table and the SVG chart are there;
3. with ``--screenshots DIR``, saves a PNG of each page to look at, and prints the worklist
   to ``worklist.pdf`` (its print stylesheet: controls hidden, headers repeated);
4. confirms neither page asks for anything over the network: the pages carry a Content
   Security Policy of ``default-src 'none'``, the script checks the DOM holds no
   ``http(s)://`` ``src``/``href``, and Chromium runs with every proxy pointed at a dead
   port, so any fetch would fail and show in the console log (which is checked for
   ``net::`` errors).

Exit 0 when every check passes, 1 when one fails, 2 when Chromium is not installed.
``tests/test_worklist.py`` runs this when Chromium is present and skips (saying why) when
it is not.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(browser: str, url: str, *extra: str) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="fl-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               "--disable-default-apps", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=3000", *extra, url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        return done.stdout, done.stderr


def _no_network_refs(dom: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?(https?:|//)""", dom, flags=re.I)


def _net_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "net::ERR" in line and "file://" not in line]


def check_worklist(browser: str, page: Path, shots: Path | None) -> list[str]:
    problems = []
    dom, log = _run(browser, page.resolve().as_uri() + "#selftest", "--dump-dom")
    m = re.search(r"<pre id=\"selftest-result\"[^>]*data-ok=\"(true|false)\"[^>]*>([^<]*)</pre>", dom)
    if not m:
        m = re.search(r"<pre[^>]*id=\"selftest-result\"[^>]*>([^<]*)</pre>", dom)
        problems.append(f"{page.name}: the self-test did not run (scripts blocked or broken?) {m.group(0) if m else ''}")
    elif m.group(1) != "true":
        problems.append(f"{page.name}: self-test failed: {m.group(2)}")
    else:
        print(f"{page.name}: self-test passed: {m.group(2)}")
    if "<table id=\"flags\"" not in dom:
        problems.append(f"{page.name}: the worklist table is missing")
    problems += [f"{page.name}: network reference {r}" for r in _no_network_refs(dom)]
    problems += [f"{page.name}: network error: {e}" for e in _net_errors(log)]
    if shots is not None:
        shot = shots / "worklist.png"
        _run(browser, page.resolve().as_uri(), f"--screenshot={shot}", "--window-size=1400,1800")
        print(f"screenshot: {shot}" if shot.is_file() else f"{page.name}: no screenshot written")
        pdf = shots / "worklist.pdf"  # the print stylesheet, as the lead would print it
        _run(browser, page.resolve().as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
        if not (pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")):
            problems.append(f"{page.name}: printing to PDF failed")
        else:
            print(f"printed: {pdf}")
    return problems


def check_audit(browser: str, page: Path, shots: Path | None) -> list[str]:
    problems = []
    dom, log = _run(browser, page.resolve().as_uri(), "--dump-dom")
    if "<table id=\"audit\"" not in dom:
        problems.append(f"{page.name}: the audit table did not render")
    if "<svg" not in dom:
        problems.append(f"{page.name}: the coverage chart is missing")
    problems += [f"{page.name}: network reference {r}" for r in _no_network_refs(dom)]
    problems += [f"{page.name}: network error: {e}" for e in _net_errors(log)]
    if not problems:
        print(f"{page.name}: renders with its table and chart")
    if shots is not None:
        shot = shots / "audit.png"
        _run(browser, page.resolve().as_uri(), f"--screenshot={shot}", "--window-size=1400,1800")
        print(f"screenshot: {shot}" if shot.is_file() else f"{page.name}: no screenshot written")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report_dir", type=Path, help="a folder family-link check wrote (holds worklist.html)")
    parser.add_argument("audit_dir", type=Path, nargs="?", help="a folder family-link audit wrote (holds audit.html)")
    parser.add_argument("--screenshots", type=Path, help="folder to save worklist.png and audit.png into")
    args = parser.parse_args(argv)
    browser = find_chromium()
    if browser is None:
        print("Chromium not found: apt-get update && apt-get install -y chromium", file=sys.stderr)
        return 2
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    problems = check_worklist(browser, args.report_dir / "worklist.html", args.screenshots)
    if args.audit_dir is not None:
        problems += check_audit(browser, args.audit_dir / "audit.html", args.screenshots)
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    print("all checks passed" if not problems else f"{len(problems)} checks failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
