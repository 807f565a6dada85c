"""Rules every notebook in the repo follows (ARCHITECTURE.md), and the fork-badge rewriter."""

import ast
import json
import shutil
from pathlib import Path

import pytest
from astrobench import badges

ROOT = badges.repo_root(Path(__file__))
NOTEBOOKS = badges.notebooks(ROOT)
SETTING = badges.setting(ROOT)


def test_there_are_notebooks():
    assert ROOT / "shared" / "00_start_here.ipynb" in NOTEBOOKS


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def notebook(request):
    path = request.param
    return path.relative_to(ROOT).as_posix(), json.loads(path.read_text())


def test_first_cell_has_title_and_badges_to_its_own_path(notebook):
    rel, nb = notebook
    first = nb["cells"][0]
    src = "".join(first["source"])
    assert first["cell_type"] == "markdown" and src.startswith("# "), "first cell: a markdown title"
    colab, binder = badges.urls(rel, **SETTING)
    assert colab in src, f"Colab badge must open {colab}"
    assert binder in src, f"Binder badge must open {binder}"
    assert "What you will learn" in src and "Expected run time" in src


def test_second_cell_is_the_colab_bootstrap(notebook):
    rel, nb = notebook
    src = "".join(nb["cells"][1]["source"])
    assert nb["cells"][1]["cell_type"] == "code"
    assert '"google.colab" in sys.modules' in src
    assert f'REPO = "{SETTING["repo"]}"' in src and f'BRANCH = "{SETTING["branch"]}"' in src
    assert f'TRACK = "{rel.split("/")[0]}"' in src
    assert "-e" not in src.split("pip")[-1].split("]")[0], "Colab install must not be editable"


def test_no_stored_outputs_and_valid_python(notebook):
    rel, nb = notebook
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert not cell.get("outputs"), f"{rel} cell {i} has stored outputs"
        assert cell.get("execution_count") is None, f"{rel} cell {i} has an execution count"
        src = "".join(cell["source"])
        ast.parse(src, filename=f"{rel}[{i}]")  # no %magics or !shell: they are not Python
        assert len(src.splitlines()) <= 60, f"{rel} cell {i} is long: move code into the script or astrobench"


def test_badge_rewrite_for_a_fork(tmp_path):
    fork = tmp_path / "fork"
    for src in [ROOT / "pyproject.toml", *ROOT.glob("*.md"), *ROOT.glob("*/README.md"), *NOTEBOOKS]:
        dest = fork / src.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
    changed = badges.rewrite("someone/my-fork", "event-2026", root=fork)
    assert fork / "pyproject.toml" in changed
    assert badges.setting(fork) == {"repo": "someone/my-fork", "branch": "event-2026"}
    for path in badges.notebooks(fork):
        rel = path.relative_to(fork).as_posix()
        nb = json.loads(path.read_text())
        head, boot = "".join(nb["cells"][0]["source"]), "".join(nb["cells"][1]["source"])
        colab, binder = badges.urls(rel, "someone/my-fork", "event-2026")
        assert colab in head and binder in head
        assert SETTING["repo"] not in head and 'REPO = "someone/my-fork"' in boot
    readme = (fork / "README.md").read_text()
    assert SETTING["repo"] + "/blob" not in readme
    assert badges.rewrite("someone/my-fork", "event-2026", root=fork) == []  # idempotent
