"""The leaderboard site in a real headless browser: Debian's Chromium driven by Playwright (`.ci/run` installs the
chromium package; the `test` extra brings playwright; Playwright's own browser download is never used).

It opens the site from file:// URLs, as an organiser would offline: the index, then a track page through its link;
checks the ranking order, the rejected rows and the escaped team name; checks that every image and the stylesheet
load and that nothing reaches the console; and saves a screenshot of each page into the test's tmp_path."""

import os
import shutil
from pathlib import Path

import pytest
from astrobench import leaderboard

# Debian's package first; $ASTROBENCH_CHROMIUM or a Chrome on PATH elsewhere (GitHub's Ubuntu runners ship
# google-chrome, and Ubuntu's "chromium" is a snap that CI cannot run)
FOUND = [p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("google-chrome")) if p and
         os.path.exists(p)]
CHROMIUM = Path(os.environ.get("ASTROBENCH_CHROMIUM") or next(iter(FOUND), "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def _sync_playwright():
    missing = None if CHROMIUM.exists() else f"{CHROMIUM} missing (apt-get install chromium; .ci/run does it)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = missing or "playwright not installed (pip install -e '.[test]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return sync_playwright


def test_site_in_headless_chromium(tmp_path):
    sync_playwright = _sync_playwright()
    from test_leaderboard import XSS, make_submissions  # the unit tests' submissions (shared/tests is on sys.path)

    subs, base = make_submissions(tmp_path)
    site = tmp_path / "site"
    leaderboard.build(subs, site, baselines=base, n_boot=20, max_mb=16, timeout=None)
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in (
                "error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
            page.on("dialog", lambda d: problems.append(f"dialog: {d.message}") or d.dismiss())

            page.goto((site / "index.html").as_uri())
            assert page.title() == "Tracks · astrobench leaderboard"
            assert page.locator("#boards tr[data-board=nope]").inner_text().endswith(
                "rejected: folder 'nope' is not a board; expected a track (generative, sbi, multimodal, anomaly, "
                "superres) or <track>-<task>")
            assert page.locator("#boards tr[data-board=anomaly] td").nth(2).inner_text().startswith("Strong (0.97")
            page.screenshot(path=tmp_path / "index.png", full_page=True)

            page.click("#boards a[href='anomaly.html']")
            page.wait_for_load_state("load")
            assert page.title() == "anomaly · astrobench leaderboard"
            rows = page.locator("#ranking tbody tr")
            ranked = rows.evaluate_all("rs => rs.filter(r => !r.classList.contains('rejected') && r.dataset.team)"
                                       ".map(r => [r.dataset.team, r.cells[0].innerText])")
            assert ranked == [["strong", "1"], ["baseline", "–"], ["xss", "2"], ["coin", "3"]]
            rejected = dict(rows.evaluate_all("rs => rs.filter(r => r.classList.contains('rejected'))"
                                              ".map(r => [r.dataset.team, r.cells[2].innerText])"))
            assert sorted(rejected) == ["badjson", "bomb", "link", "noteam", "pickle", "short", "text"]
            assert all(text.startswith("rejected: ") for text in rejected.values())
            assert rejected["short"].startswith("rejected: 10 rows; expected the galaxies-anomaly test split")
            assert page.locator("tr[data-team=xss] td").nth(1).inner_text() == XSS  # shown, never run
            assert page.locator("#ranking tr.reference").all_inner_texts()[0].split() == ["random", "ranking", "0.5"]
            loaded = page.eval_on_selector("img.plot", "img => img.complete && img.naturalWidth > 600")
            styled = page.eval_on_selector("tr.baseline", "r => getComputedStyle(r).backgroundColor")
            assert loaded and styled == "rgb(255, 244, 229)"  # the plot and style.css both arrived
            shot = tmp_path / "anomaly.png"
            page.screenshot(path=shot, full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
