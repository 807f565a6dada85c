"""The kit's website (`make site`, site/build.py) built for real and opened in headless Chromium (Debian's package,
driven by Playwright, as the leaderboard's browser test does).

The build executes every notebook in FAST mode through the site's notebook cache (build/site/jupyter_cache, shared
with `make site`): with the site tooling installed this is where `make test` runs the notebooks, instead of nbval,
so each runs once. Then: every link and image of every page points at a file of the site (anchors included); the
home page, every track page and every notebook page load in the browser with nothing on the console; every notebook
page shows a figure that loaded, and its Colab and Binder badges for its own path; the home page's track table fits a
1 280-px window (no horizontal scroll); the guides (docs/), each track's RESULTS page, the dataset cards and the
leaderboard page are there. Screenshots of the home page and of one notebook page are kept in build/site-test/."""

import hashlib
import os
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from test_leaderboard_browser import ARGS, CHROMIUM, _sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "site-test"  # ignored by git: the screenshots outlive pytest's tmp folders
pytest.importorskip("myst_nb", reason="site tooling not installed (pip install -e '.[site]'; make site does it)")
pytest.importorskip("sphinx_book_theme", reason="site tooling not installed (pip install -e '.[site]')")
sys.path.insert(0, str(ROOT / "site"))
import site_layout  # noqa: E402
from test_site import site_build  # noqa: E402  (site/build.py, loaded under a name of its own)

pytestmark = pytest.mark.slow
# what the pages may load from outside the site: the badges' images and MathJax (stubbed in the browser, offline)
EXTERNAL_HOSTS = {"colab.research.google.com", "mybinder.org", "cdn.jsdelivr.net"}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("href", "src"):
            if a.get(key) and not (tag == "link" and key == "href" and a.get("rel") in ("preconnect", "dns-prefetch")):
                self.refs.append(a[key])


def _parse(path):
    p = _Links()
    p.feed(path.read_text())
    return p


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from astrobench import leaderboard
    from test_leaderboard import make_submissions

    root = tmp_path_factory.mktemp("site")
    subs, base = make_submissions(root)
    board = root / "board"
    leaderboard.build(subs, board, baselines=base, n_boot=20, max_mb=16, timeout=None)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in site_layout.notebooks()}
    out = root / "html"
    # SITE_FORCE=1: execute every notebook even when the cache holds it for this code (an empty cache first)
    done = site_build.build(out, jobs=int(os.environ.get("SITE_JOBS", 2)), leaderboard=board,
                            force=os.environ.get("SITE_FORCE") == "1")
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in site_layout.notebooks()}
    assert after == before, "the build wrote into a committed notebook"
    assert set(done["executed"]) <= set(before)  # those not executed came from the cache, by content and code
    return out


def test_every_link_and_image_resolves(site):
    site = site.resolve()
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)  # _static: the theme's templates
    assert len(pages) > 30
    parsed = {p: _parse(p) for p in pages}
    broken, external = [], set()
    for page, links in parsed.items():
        for ref in links.refs:
            url = urlsplit(ref)
            if url.scheme in ("http", "https"):
                external.add(url.netloc)
                continue
            if url.scheme in ("mailto", "data", "javascript"):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site not in target.parents:
                broken.append(f"{page.relative_to(site)}: {ref}")
            elif url.fragment and target.suffix == ".html" and target in parsed and \
                    unquote(url.fragment) not in parsed[target].ids:
                broken.append(f"{page.relative_to(site)}: {ref} (no such anchor)")
    assert broken == []
    assert "github.com" in external  # files that are not pages link to the repository
    readme = (site / "README.html").read_text()
    assert all(f'href="{t}/README.html"' in readme for t in site_layout.tracks())  # "[sbi](sbi/)" → its README
    assert (site / "index.html").read_bytes() == (site / "README.html").read_bytes()
    assert (site / ".nojekyll").is_file() and not list(site.parent.glob(f".{site.name}.*"))  # swapped in, no temp


def test_pages_of_the_kit(site):
    from astrobench import data

    for page in ("BEST_PRACTICES", "RESOURCES", "CONTRIBUTING", "leaderboard", "datasets/index"):
        assert (site / f"{page}.html").is_file(), page
    guides = [*site_layout.guides(), *(p for t in site_layout.tracks() for p in site_layout.track_pages(t))]
    assert "docs/results.md" in guides and all(f"{t}/RESULTS.md" in guides for t in site_layout.tracks())
    for page in guides:  # the README's guides (docs/) and each track's RESULTS, linked from the pages that cite them
        assert (site / page).with_suffix(".html").is_file(), page
    home = (site / "index.html").read_text()
    assert all(f'href="{g.removesuffix(".md")}.html"' in home for g in site_layout.guides())
    for name in data.list():
        html = (site / "datasets" / f"{name}.html").read_text()
        assert f"astrobench info {name}" in html
        sections = sum(line.startswith("## ") for line in data.info(name)["card"].splitlines())
        assert html.count("<h2>") >= sections, name  # the card's sections are on the page
    assert all((site / "datasets" / f"{name}.html").is_file() for name in site_layout.task_cards())  # SBI tasks
    assert 'href="leaderboard/index.html"' in (site / "leaderboard.html").read_text()
    assert (site / "leaderboard" / "results.json").is_file()


def test_pages_in_headless_chromium(site):
    sync_playwright = _sync_playwright()
    notebooks = [p.relative_to(ROOT).with_suffix(".html").as_posix() for p in site_layout.notebooks()]
    pages = ["index.html", *(f"{t}/README.html" for t in site_layout.tracks()), *notebooks,
             *(p.removesuffix(".md") + ".html" for t in site_layout.tracks() for p in site_layout.track_pages(t)),
             *(p.removesuffix(".md") + ".html" for p in site_layout.guides())]
    setting = site_layout.setting()
    problems, requested = [], set()
    SHOTS.mkdir(parents=True, exist_ok=True)

    def outside(route):  # offline: the badges and MathJax are stubbed; anything else is a problem
        host = urlsplit(route.request.url).netloc
        requested.add(host)
        if route.request.resource_type == "image":
            route.fulfill(status=200, content_type="image/svg+xml",
                          body='<svg xmlns="http://www.w3.org/2000/svg" width="90" height="20">'
                               '<rect width="90" height="20" rx="3" fill="#777"/></svg>')  # a badge's place
        else:
            route.fulfill(status=200, content_type="application/javascript", body="")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route(lambda url: not url.startswith("file:"), outside)
            current = {}
            page.on("console", lambda m: problems.append(f"{current['page']}: console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"{current['page']}: page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"{current['page']}: failed to load {r.url}"))
            for rel in pages:
                current["page"] = rel
                page.goto((site / rel).as_uri(), wait_until="load")
                assert page.locator("article h1").count() >= 1, rel
                if rel in notebooks:
                    figures = page.eval_on_selector_all(
                        ".cell_output img", "imgs => imgs.filter(i => i.complete && i.naturalWidth > 100).length")
                    assert figures >= 1, f"{rel}: no figure among the notebook's outputs"
                    path = rel.removesuffix(".html") + ".ipynb"
                    hrefs = page.eval_on_selector_all("article a", "as => as.map(a => a.href)")
                    assert (f"https://colab.research.google.com/github/{setting['repo']}/blob/{setting['branch']}/"
                            f"{path}") in hrefs, f"{rel}: no Colab badge for {path}"
                    assert any(h.startswith(f"https://mybinder.org/v2/gh/{setting['repo']}/{setting['branch']}")
                               and h.endswith("labpath=" + path.replace("/", "%2F")) for h in hrefs), rel
                if rel == "index.html":
                    # a 1 280-px window shows the whole track table: no horizontal scroll, neither of the page nor
                    # of the table (the theme puts tables in a scrollable box, which would hide cut-off columns),
                    # and the table is shorter than the window
                    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
                    assert width[0] <= width[1], f"the home page scrolls sideways at 1280 px: {width}"
                    sizes = "ts => ts.map(t => [t.scrollWidth, t.parentElement.clientWidth, t.offsetHeight])"
                    tables = page.eval_on_selector_all("article table", sizes)
                    assert tables, "no track table on the home page"
                    for table_width, box_width, height in tables:
                        assert table_width <= box_width, f"the track table is wider than its box: {tables}"
                        assert height < 900, f"the track table is taller than the window: {tables}"
                    page.screenshot(path=SHOTS / "home.png", full_page=True)
                if rel == notebooks[1]:  # a track's first notebook
                    page.screenshot(path=SHOTS / "notebook.png", full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert requested <= EXTERNAL_HOSTS, requested
    assert (SHOTS / "home.png").stat().st_size > 20_000 and (SHOTS / "notebook.png").stat().st_size > 20_000
