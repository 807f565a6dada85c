"""Colab and Binder badges, built from one repo setting (``[tool.astrobench]`` in pyproject.toml).

``astrobench badges --repo OWNER/NAME [--branch B]`` stores the setting and rewrites the badges
in every notebook's first cell and in the README files, so a fork's badges open the fork.
"""

from __future__ import annotations

import json
import re

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path
from urllib.parse import quote

COLAB = "https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"
BINDER = "https://mybinder.org/v2/gh/{repo}/{branch}?labpath={qpath}"
COLAB_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_IMG = "https://mybinder.org/badge_logo.svg"
_COLAB_RE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"']+?\.ipynb")
_BINDER_RE = re.compile(r"https://mybinder\.org/v2/gh/[^)\s\"']+?labpath=[^)\s\"']+")
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def repo_root(start: Path | None = None) -> Path:
    """The kit's root: the nearest parent holding a pyproject.toml with [tool.astrobench]."""
    candidates = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve()]
    for c in candidates:
        for p in [c, *c.parents]:
            f = p / "pyproject.toml"
            if f.is_file() and "[tool.astrobench]" in f.read_text():
                return p
    raise FileNotFoundError("cannot find the kit's root (a pyproject.toml with [tool.astrobench]); run inside the repo")


def setting(root: Path | None = None) -> dict:
    root = root or repo_root()
    with open(root / "pyproject.toml", "rb") as f:
        conf = tomllib.load(f)["tool"]["astrobench"]
    return {"repo": conf["repo"], "branch": conf.get("branch", "main")}


def urls(path: str, repo: str, branch: str) -> tuple[str, str]:
    """(colab, binder) URLs opening the notebook at repo-relative ``path``."""
    return (COLAB.format(repo=repo, branch=branch, path=path),
            BINDER.format(repo=repo, branch=branch, qpath=quote(path, safe="")))


def badge_markdown(path: str, repo: str, branch: str) -> str:
    colab, binder = urls(path, repo, branch)
    return f"[![Open In Colab]({COLAB_IMG})]({colab}) [![Binder]({BINDER_IMG})]({binder})"


def notebooks(root: Path) -> list[Path]:
    skip = {".venv", ".git", ".ipynb_checkpoints", "outputs", "build"}
    return sorted(p for p in root.rglob("*.ipynb") if not skip & set(p.relative_to(root).parts))


def _rewrite_text(text: str, repo: str, branch: str) -> str:
    """Point every Colab/Binder link in ``text`` at ``repo``@``branch``, keeping each link's notebook path."""
    def colab(m):
        path = m.group(0).split("/blob/", 1)[1].split("/", 1)[1]
        return urls(path, repo, branch)[0]

    def binder(m):
        qpath = m.group(0).split("labpath=", 1)[1]
        return BINDER.format(repo=repo, branch=branch, qpath=qpath)

    return _BINDER_RE.sub(binder, _COLAB_RE.sub(colab, text))


def rewrite(repo: str, branch: str = "main", root: Path | None = None) -> list[Path]:
    """Store the setting and rewrite every badge; returns the files changed."""
    if not REPO_RE.match(repo):
        raise ValueError(f"--repo {repo!r}: expected OWNER/NAME")
    root = root or repo_root()
    changed = []
    py = root / "pyproject.toml"
    text = py.read_text()
    new = re.sub(r'(\[tool\.astrobench\][^\[]*?repo = )"[^"]*"', rf'\1"{repo}"', text, count=1)
    new = re.sub(r'(\[tool\.astrobench\][^\[]*?branch = )"[^"]*"', rf'\1"{branch}"', new, count=1)
    if new != text:
        py.write_text(new)
        changed.append(py)
    for nb_path in notebooks(root):
        nb = json.loads(nb_path.read_text())
        rel = nb_path.relative_to(root).as_posix()
        dirty = False
        for i, cell in enumerate(nb["cells"][:2]):
            src = "".join(cell["source"])
            new_src = _rewrite_text(src, repo, branch)
            if i == 0:  # the title cell's badges always point at this notebook's own path
                colab, binder = urls(rel, repo, branch)
                new_src = _BINDER_RE.sub(binder, _COLAB_RE.sub(colab, new_src))
            if i == 1:  # the Colab bootstrap clones the repo setting
                new_src = re.sub(r'REPO = "[^"]*"', f'REPO = "{repo}"', new_src)
                new_src = re.sub(r'BRANCH = "[^"]*"', f'BRANCH = "{branch}"', new_src)
            if new_src != src:
                cell["source"] = new_src.splitlines(keepends=True)
                dirty = True
        if dirty:
            nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(nb_path)
    for md in sorted(root.glob("*.md")) + sorted(root.glob("*/README.md")):
        text = md.read_text()
        new = _rewrite_text(text, repo, branch)
        if new != text:
            md.write_text(new)
            changed.append(md)
    return changed


BOOTSTRAP = '''# Colab only: clone the kit once into /content/kit, install it once with this track's extra and move
# into the track folder; safe to run again. Elsewhere (local, Binder, CI) this cell does nothing.
import os
import subprocess
import sys

REPO = "{repo}"
BRANCH = "{branch}"
TRACK = "{track}"
if "google.colab" in sys.modules:
    KIT = os.environ.get("ASTROBENCH_KIT_DIR", "/content/kit")  # absolute: re-running from a track folder is safe
    URL = os.environ.get("ASTROBENCH_KIT_URL", f"https://github.com/{{REPO}}")
    if not os.path.isdir(os.path.join(KIT, ".git")):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", BRANCH, URL, KIT], check=True)
    stamp = os.path.join(KIT, f".installed-{{TRACK}}")
    if not os.path.exists(stamp):
        # non-editable (an editable install is invisible to the running kernel); the kit sets lower bounds
        # only, so pip installs what is missing and keeps Colab's torch, jax and numpy
        extra = "" if TRACK == "shared" else f"[{{TRACK}}]"
        pip = os.environ.get("ASTROBENCH_KIT_PIP", "").split() or [sys.executable, "-m", "pip"]
        done = subprocess.run([*pip, "install", "-q", f"{{KIT}}{{extra}}"], capture_output=True, text=True)
        if done.returncode:
            print(done.stdout[-3000:], done.stderr[-3000:], sep="\\n")
            raise RuntimeError(f"installing the kit failed (pip exit {{done.returncode}}): pip's output is above")
        open(stamp, "w").close()
    os.chdir(os.path.join(KIT, TRACK))
'''


def refresh_bootstrap(root: Path | None = None) -> list[Path]:
    """Rewrite every notebook's second cell from BOOTSTRAP (the repo setting, the notebook's track); returns the
    notebooks that changed."""
    root = root or repo_root()
    conf = setting(root)
    changed = []
    for nb_path in notebooks(root):
        nb = json.loads(nb_path.read_text())
        track = nb_path.relative_to(root).parts[0]
        src = BOOTSTRAP.format(track=track, **conf).rstrip("\n")
        if "".join(nb["cells"][1]["source"]) != src:
            nb["cells"][1]["source"] = src.splitlines(keepends=True)
            nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(nb_path)
    return changed


def header_source(path: str, title: str, learn: list, runtime: str, repo: str, branch: str) -> str:
    """Markdown of a notebook's first cell: title, badges, what you will learn, run time."""
    bullets = "\n".join(f"- {item}" for item in learn)
    return (f"# {title}\n\n{badge_markdown(path, repo, branch)}\n\n"
            f"**What you will learn**\n{bullets}\n\n**Expected run time**: {runtime}\n")


def new_notebook(path, title: str, learn: list, runtime: str, cells: list, root: Path | None = None) -> Path:
    """Write a notebook that follows the kit's rules: header cell, Colab bootstrap, then ``cells``.

    ``cells`` is a list of ("md" | "code", source) pairs. Outputs are never stored.
    """
    import nbformat

    root = root or repo_root()
    path = Path(path).resolve()
    rel = path.relative_to(root).as_posix()
    conf = setting(root)
    track = rel.split("/", 1)[0]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(header_source(rel, title, learn, runtime, **conf)))
    nb.cells.append(nbformat.v4.new_code_cell(BOOTSTRAP.format(track=track, **conf).rstrip("\n")))
    for kind, source in cells:
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(make(source.strip("\n")))
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    path.write_text(nbformat.writes(nb) + "\n")
    return path
