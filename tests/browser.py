"""A report page as a person sees it: opened in headless Chromium through Playwright.

Used by the tests (``tests/test_report_browser.py``) and by ``make report-check``, which also
saves a full-page screenshot: ``python tests/browser.py PAGE.html [SHOT.png]``.
"""

from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

# Chromium on a closed network: no background traffic, no sandbox (containers run as root).
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str | None:
    """The Chromium executable, or None when this machine has none."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def opened(page_file: str | Path, width: int = 1400):
    """Yield ``(page, problems)``: the loaded page and every console error or page error."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url[:80]}"))
            page.goto(Path(page_file).resolve().as_uri(), wait_until="load")
            yield page, problems
        finally:
            browser.close()


def image_sizes(page) -> list[tuple[str, int, int]]:
    """(alt, natural width, natural height) of every <img>; 0 means it did not load."""
    return [
        tuple(x)
        for x in page.evaluate(
            "Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.naturalHeight])"
        )
    ]


def column(page, table: int, col: int) -> list[str]:
    """The text of column ``col`` of the ``table``-th sortable table, top to bottom."""
    return page.evaluate(
        "([t, c]) => Array.from(document.querySelectorAll('table.sortable')[t].tBodies[0].rows)"
        ".map(r => r.cells[c].textContent.trim())",
        [table, col],
    )


def click_header(page, table: int, col: int) -> None:
    page.locator("table.sortable").nth(table).locator("thead th").nth(col).click()


def main(argv: list[str]) -> int:
    html, shot = argv[0], (argv[1] if len(argv) > 1 else None)
    with opened(html) as (page, problems):
        sizes = image_sizes(page)
        broken = [alt for alt, w, h in sizes if w == 0 or h == 0]
        if shot:
            page.screenshot(path=shot, full_page=True)
    print(f"{html}: {len(sizes)} images, {len(broken)} broken, {len(problems)} console errors")
    for line in broken + problems:
        print("  " + line)
    if shot:
        print(f"screenshot: {shot}")
    return 1 if broken or problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
