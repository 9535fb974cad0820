"""The HTML report of the whole state-media dump: its size, the time to build it, and the
time Chromium takes to open and draw it, beside the bundled sample's report.

    python benchmarks/bench_report.py [--screenshots docs/]

Scores ``cn-state-media-facebook-2022`` (all 15,931 rows; the text cache makes a second
run quick) and the bundled sample, writes each report, opens each in headless Chromium
(the browser tests' harness: Debian's chromium, a fresh profile, no network) and prints
size, build time, time from navigation to the last chart drawn, requests and console
errors. With ``--screenshots DIR`` it saves the dump report's overview and the sample
report's pivoting page (lace_boutique) as PNGs there (the README shows them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _data import FB, FB_COLUMNS, ROOT

sys.path.insert(0, str(ROOT / "tests" / "report"))
from browser import chromium, visit


def _score(source: Path, out: Path, columns: dict | None, tz: str | None) -> Path:
    import narratives

    result = narratives.score(source, columns, tz=tz, progress=False)
    return result.save(out)


def _shoot(browser, report: Path, png: Path, section: str | None = None) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(report.resolve().as_uri())
    page.wait_for_function("document.body.dataset.drawn !== undefined")
    if section:
        page.evaluate(f"document.getElementById('{section}').scrollIntoView()")
    page.screenshot(path=str(png))
    context.close()


def main() -> None:
    from narratives.report.build import write_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args()
    runs = [("sample", ROOT / "samples/posts.jsonl", None, None)]
    if FB.exists():
        runs.append((FB.parent.name, FB, FB_COLUMNS, "Asia/Shanghai"))
    else:
        print(f"{FB} absent: only the sample is measured")
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        for name, source, columns, tz in runs:
            scored = _score(source, Path(tmp) / name, columns, tz)
            start = time.perf_counter()
            report = write_report(scored)
            build = time.perf_counter() - start
            seen = visit(browser, report)
            print(
                f"{name}: {report.stat().st_size / 1e6:.2f} MB, built in {build:.2f} s, "
                f"drawn in Chromium in {seen.seconds_to_draw:.2f} s "
                f"({seen.state['drawn']} of {seen.state['charts']} charts), "
                f"requests {len(seen.requests)} (the file itself), "
                f"console errors {len(seen.console_errors) + len(seen.page_errors)}"
            )
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                if name == "sample":  # its second page pivots from Chinese ads to politics
                    _shoot(browser, report, args.screenshots / "report-pivot.png", "page-1")
                else:
                    _shoot(browser, report, args.screenshots / "report-overview.png")
                print(f"screenshot in {args.screenshots}/")


if __name__ == "__main__":
    main()
