"""What the website holds and where it comes from: one list for site/build.py, site/conf.py and the site's tests."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "site"  # build/ is ignored by git, ruff, pytest and `astrobench badges`
START = "shared/00_start_here.ipynb"
KIT_PAGES = ("README.md", "BEST_PRACTICES.md", "RESOURCES.md", "CONTRIBUTING.md")
TRACK_ORDER = ("generative", "sbi", "multimodal", "anomaly", "superres")
DOCS = "docs"  # the guides the README links to (organisers, events, scaling up, data, results...): one page each


def tracks() -> list:
    """The track folders present (a kit trimmed to fewer tracks builds a smaller site)."""
    return [t for t in TRACK_ORDER if (ROOT / t / "README.md").is_file()]


def guides() -> list:
    """The guide pages, docs/*.md, as paths relative to the kit (the README links each one)."""
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / DOCS).glob("*.md"))


def track_pages(track: str) -> list:
    """A track's markdown pages besides its README: its RESULTS.md (every measurement with its command) when present."""
    return [f"{track}/{name}" for name in ("RESULTS.md",) if (ROOT / track / name).is_file()]


def track_notebooks(track: str, relative: bool = False) -> list:
    found = sorted((ROOT / track).glob("[0-9][0-9]_*.ipynb"))
    return [p.name for p in found] if relative else found


def notebooks() -> list:
    """Every notebook page of the site: the start notebook, then each track's."""
    return [ROOT / START, *(p for t in tracks() for p in track_notebooks(t))]


def setting() -> dict:
    """The repo setting that `astrobench badges` rewrites for a fork: the site's GitHub links follow it too."""
    from astrobench import badges

    return badges.setting(ROOT)


def github_url(rel: str, is_dir: bool = False) -> str:
    s = setting()
    return f"https://github.com/{s['repo']}/{'tree' if is_dir else 'blob'}/{s['branch']}/{rel}"


def datasets() -> list:
    from astrobench import data

    return data.list()


def task_cards() -> dict:
    """Cards shipped beside the datasets' that belong to no dataset (the SBI tasks'): {name: markdown}."""
    from importlib import resources

    folder = resources.files("astrobench.data") / "cards"
    names = sorted(f.name.removesuffix(".md") for f in folder.iterdir() if f.name.endswith(".md"))
    return {n: (folder / f"{n}.md").read_text() for n in names if n not in datasets()}
