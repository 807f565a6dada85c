"""Sphinx configuration of the kit's website (`make site`, which runs site/build.py).

The source folder is a staged copy of the repository's pages (build/site/src, laid out like the repository so that
relative links between the markdown files resolve as they do on GitHub); notebooks are staged with their outputs from
the jupyter-cache that build.py fills, so Sphinx itself never executes one."""

import json
import os
import sys
from pathlib import Path

from docutils import nodes
from sphinx import addnodes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import site_layout as layout  # noqa: E402  (which pages the site holds; shared with build.py and the tests)

ROOT = layout.ROOT

project = "Astro×ML hackathon starter kit"
author = "the kit's contributors"
copyright = "the kit's contributors, BSD-3-Clause"
root_doc = "README"  # build.py copies README.html to index.html for the web server
extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
html_title = "Astro×ML hackathon kit"
html_static_path = []
html_copy_source = False  # the notebooks' sources stay on GitHub; the site shows them executed
html_show_sourcelink = False
html_theme_options = {
    "repository_url": f"https://github.com/{layout.setting()['repo']}",
    "repository_branch": layout.setting()["branch"],
    "use_repository_button": True,
    "use_download_button": False,  # its ".md/.ipynb source" entry needs html_copy_source
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
# the theme's mode when a visitor has none stored (left empty, the theme logs an error on a first visit); light: the
# notebooks' figures have white backgrounds
html_context = {"default_mode": "light"}
exclude_patterns = []

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 6  # "README.md#leaderboard"-style links resolve to any heading, as on GitHub
# myst-nb renders the notebooks as staged: build.py stages executed copies from its jupyter-cache
nb_execution_mode = "off"
nb_merge_streams = True
nb_output_stderr = "remove"  # progress bars and library warnings: noise on a static page (stdout and figures stay)
suppress_warnings = ["myst.header"]  # READMEs jump heading levels as GitHub allows


NOTEBOOK_DOCS = {p.relative_to(ROOT).with_suffix("").as_posix() for p in layout.notebooks()}


def _fold_colab_cell(text: str) -> str:
    """The Colab bootstrap cell (it does nothing outside Colab) is folded under "Show code cell source" on the page
    (the staged copy only; the committed notebook is untouched)."""
    nb = json.loads(text)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "google.colab" in "".join(cell["source"]):
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
            break
    return json.dumps(nb)


def _toctrees(app, docname, source):
    """Navigation: the home page lists the start notebook, the tracks, the guides (docs/) and the kit's pages; a
    track's README lists its notebooks and its RESULTS page. Added to the sources in memory (hidden: the pages
    already link to each other in their text)."""
    if docname == "README":
        tracks = "\n".join(f"{t}/README" for t in layout.tracks())
        kit = "\n".join(p.removesuffix(".md") for p in layout.KIT_PAGES if p != "README.md")
        guides = "\n".join(p.removesuffix(".md") for p in layout.guides())
        source[0] += (f"\n\n```{{toctree}}\n:hidden:\n:caption: Start\n\n{layout.START[:-6]}\n```\n"
                      f"\n```{{toctree}}\n:hidden:\n:caption: Tracks\n\n{tracks}\n```\n"
                      + (f"\n```{{toctree}}\n:hidden:\n:caption: Guides\n\n{guides}\n```\n" if guides else "")
                      + f"\n```{{toctree}}\n:hidden:\n:caption: The kit\n\ndatasets/index\nleaderboard\n{kit}\n```\n")
    elif docname.endswith("/README") and docname.split("/")[0] in layout.tracks():
        track = docname.split("/")[0]
        listed = "\n".join([*(n.removesuffix(".ipynb") for n in layout.track_notebooks(track, relative=True)),
                            *(p.split("/", 1)[1].removesuffix(".md") for p in layout.track_pages(track))])
        source[0] += f"\n\n```{{toctree}}\n:hidden:\n\n{listed}\n```\n"
    elif docname in NOTEBOOK_DOCS:
        source[0] = _fold_colab_cell(source[0])
    elif docname == "datasets/index":
        cards = [*layout.datasets(), *layout.task_cards()]
        source[0] += "\n\n```{toctree}\n:hidden:\n\n" + "\n".join(cards) + "\n```\n"


def _link_outside_the_site(app, doctree):
    """A relative link to a folder becomes a link to its README page when the site has one (as GitHub shows a folder's
    README); a link to a repository file that is not a page of the site (a script, a workflow, an sbatch file) goes
    to that file on GitHub. Anything else is left to myst, which warns (and build.py fails on warnings)."""
    docdir = Path(app.env.doc2path(app.env.docname)).parent.relative_to(app.srcdir)
    for node in list(doctree.findall(lambda n: isinstance(n, (addnodes.pending_xref, addnodes.download_reference)))):
        if node.get("reftype") != "myst" or node.get("refdomain") == "doc":
            continue
        target, _, anchor = node["reftarget"].partition("#")
        rel = os.path.normpath(docdir / target).replace(os.sep, "/")
        if rel.startswith(".."):
            continue
        if (Path(app.srcdir) / rel / "README.md").is_file():
            node["refdomain"], node["reftarget"], node["reftargetid"] = "doc", f"{rel}/README", anchor or None
        elif (ROOT / rel).exists():
            ref = nodes.reference("", "", *node.children, refuri=layout.github_url(rel, (ROOT / rel).is_dir()),
                                  internal=False)
            node.replace_self(ref)


def setup(app):
    app.connect("source-read", _toctrees)
    app.connect("doctree-read", _link_outside_the_site)
    return {"parallel_read_safe": True}
