"""site/build.py, the website's build, in small: the notebook cache (run once, then reused; run again when the notebook
or the kit's code changes; a failing notebook is one line naming it and its cell) and the command's one-line errors.
The real site is built and checked in a browser in test_site_browser.py."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE_TOOLING = "site tooling not installed (the `site` extra: pip install '.[site]')"
sys.path.insert(0, str(ROOT / "site"))
# site/build.py under a name of its own, registered once (this file may be imported twice: by pytest and by
# test_site_browser.py), because the process pool pickles its worker function by module name
site_build = sys.modules.get("astrobench_site_build")
if site_build is None:
    _spec = importlib.util.spec_from_file_location("astrobench_site_build", ROOT / "site" / "build.py")
    site_build = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(site_build)


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def kit(tmp_path, monkeypatch):
    """A tiny kit: the files the code key reads, one track with a script."""
    (tmp_path / "shared" / "astrobench").mkdir(parents=True)
    (tmp_path / "shared" / "astrobench" / "core.py").write_text("X = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "generative").mkdir()
    (tmp_path / "generative" / "README.md").write_text("# Generative\n")
    (tmp_path / "generative" / "diffusion.py").write_text("STEPS = 10\n")
    monkeypatch.setattr(site_build, "ROOT", tmp_path)
    monkeypatch.setattr(site_build.layout, "ROOT", tmp_path)
    return tmp_path


def test_code_key_follows_the_code_not_the_pages(kit):
    key = site_build.code_key()
    (kit / "generative" / "README.md").write_text("# Generative, reworded\n")
    assert site_build.code_key() == key
    (kit / "generative" / "diffusion.py").write_text("STEPS = 20\n")
    changed = site_build.code_key()
    assert changed != key
    (kit / "shared" / "astrobench" / "core.py").write_text("X = 2\n")
    assert site_build.code_key() not in (key, changed)


def test_a_notebook_runs_once_in_its_folder_then_comes_from_the_cache(kit):
    get_cache = pytest.importorskip("jupyter_cache", reason=SITE_TOOLING).get_cache

    nb = _notebook(kit / "generative" / "01_a.ipynb", "import os, matplotlib.pyplot as plt\nprint(os.getcwd())",
                   "plt.plot([1, 2]); plt.show()")
    original = nb.read_bytes()
    cache = get_cache(kit / "cache")
    assert site_build.execute([nb], cache, jobs=1) == [nb]
    assert nb.read_bytes() == original  # outputs go to the cache, never into the notebook
    record = cache.match_cache_notebook(nbformat.read(nb, as_version=4))
    executed = cache.get_cache_bundle(record.pk).nb
    ran_in = Path(executed.cells[0].outputs[0]["text"].strip())  # a stand-in for its folder (outputs stay out)
    assert ran_in.name == nb.parent.name and ran_in != nb.parent and not ran_in.exists()  # deleted after the run
    assert "image/png" in executed.cells[1].outputs[-1]["data"]  # a figure, from the inline backend
    assert site_build.execute([nb], cache, jobs=1) == []  # unchanged: not run again
    _notebook(nb, "print('edited')")
    assert site_build.execute([nb], cache, jobs=1) == [nb]


def test_notebooks_run_as_at_home_but_leave_nothing_in_the_track_folder(kit, capfd):
    get_cache = pytest.importorskip("jupyter_cache", reason=SITE_TOOLING).get_cache

    track = kit / "generative"
    (track / "pretrained").mkdir()
    (track / "pretrained" / "metrics.json").write_text('{"fid": 1.5}')
    (track / "outputs").mkdir()
    (track / "outputs" / "mine.txt").write_text("a participant's run")
    before = {p: p.read_bytes() if p.is_file() else None for p in track.rglob("*")}
    nb = _notebook(track / "01_writes.ipynb", "import sys; sys.path.insert(0, '.'); import diffusion",
                   "from pathlib import Path\nPath('outputs/notebook02').mkdir(parents=True, exist_ok=True)\n"
                   "Path('outputs/mine.txt').write_text('overwritten')\n"
                   "print(diffusion.STEPS, Path('pretrained/metrics.json').read_text())")
    before[nb] = nb.read_bytes()
    assert site_build.execute([nb], get_cache(kit / "cache"), jobs=1) == [nb]
    executed = get_cache(kit / "cache").merge_match_into_notebook(nbformat.read(nb, as_version=4))[1]
    assert executed.cells[1].outputs[0]["text"] == '10 {"fid": 1.5}\n'  # its script and pretrained/ beside it
    assert {p: p.read_bytes() if p.is_file() else None for p in track.rglob("*")} == before  # no outputs/, no pycache
    assert "without encryption" not in capfd.readouterr().err  # ipykernel's notice, once per kernel, is dropped


def test_stderr_filter_drops_only_the_noise(capfd):
    with site_build._stderr_without(b"noise"):
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('keep\\nsome noise\\nkeep too\\n')"],
                       check=True)
    assert capfd.readouterr().err == "keep\nkeep too\n"


def test_a_failing_notebook_is_one_line_naming_it_and_its_cell(kit):
    get_cache = pytest.importorskip("jupyter_cache", reason=SITE_TOOLING).get_cache

    good = _notebook(kit / "generative" / "01_ok.ipynb", "x = 1")
    bad = _notebook(kit / "generative" / "02_bad.ipynb", "x = 1", "1 / 0")
    cache = get_cache(kit / "cache")
    with pytest.raises(site_build.SiteError) as err:
        site_build.execute([good, bad], cache, jobs=2)
    assert str(err.value) == ("notebook failed: generative/02_bad.ipynb: cell 2 of 2 raised ZeroDivisionError: "
                              "division by zero")
    assert site_build.stale_notebooks(cache, [good, bad]) == [bad]  # the good one is kept


@pytest.mark.parametrize("args, expected", [
    (["--jobs", "0"], "site/build.py: --jobs must be >= 1"),
    (["--leaderboard", "no-such-board"], "site/build.py: --leaderboard no-such-board: no index.html; expected a "
                                         "site from `astrobench leaderboard`"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, expected):
    pytest.importorskip("jupyter_cache", reason=SITE_TOOLING)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "site" / "build.py"), "--out", str(out), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (2, expected, "")
    assert not out.exists()


def test_out_never_replaces_a_folder_it_did_not_write(tmp_path):
    pytest.importorskip("jupyter_cache", reason=SITE_TOOLING)
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me")
    proc = subprocess.run([sys.executable, str(ROOT / "site" / "build.py"), "--out", str(mine), "--no-execute"],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr.strip()) == (2, f"site/build.py: --out {mine}: exists and is not a site "
                                                         "from site/build.py; expected a new folder or an earlier "
                                                         "site (which is replaced)")
    assert [p.name for p in mine.iterdir()] == ["todo.txt"]


def test_the_site_lists_every_notebook_that_make_test_would_run():
    """With the site tooling, `make test` runs the notebooks through the site's build instead of nbval: the site
    must hold every notebook nbval would have collected from the test paths."""
    import site_layout

    collected = {p for d in ("shared", *site_layout.TRACK_ORDER) if (ROOT / d).is_dir()
                 for p in (ROOT / d).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    assert collected == set(site_layout.notebooks())
    assert json.loads((ROOT / site_layout.START).read_text())["cells"]


def test_the_pages_workflow_publishes_what_the_build_writes():
    import yaml

    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "site.yml").read_text())
    steps = flow["jobs"]["build"]["steps"]
    assert any("python site/build.py" in s.get("run", "") for s in steps)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert ROOT / upload["with"]["path"] == site_build.BUILD / "html"  # build.py's default --out
    assert flow[True]["push"]["branches"] == ["main"]  # yaml reads the key `on` as True
    deploy = flow["jobs"]["deploy"]
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@") and deploy["needs"] == "build"


def test_readmes_start_short_and_the_site_holds_the_pages_they_link():
    """The README stays short and links every guide (docs/*.md, pages of the site); each track README opens with a
    Start of at most ~30 lines: the notebooks, the baseline command, `astrobench score`, the model slot and
    `astrobench new`, and a link to the track's RESULTS.md (a page of the site too)."""
    import site_layout

    readme = (ROOT / "README.md").read_text()
    assert len(readme.split()) <= 1200
    assert site_layout.guides() and all(f"({g})" in readme for g in site_layout.guides())
    for track in site_layout.tracks():
        text = (ROOT / track / "README.md").read_text()
        start = text.split("\n## ")[1]
        assert start.startswith("Start\n") and len(start.strip().splitlines()) <= 32, track
        assert all(f"{n}" in start for n in site_layout.track_notebooks(track, relative=True)), track
        assert f"python {track}/" in start and f"astrobench score {track}" in start, track
        assert "MODEL SLOT" in start and f"astrobench new {track} " in start, track
        assert "(RESULTS.md)" in start and site_layout.track_pages(track) == [f"{track}/RESULTS.md"], track
