"""The event day, rehearsed end to end as an organiser and a new team would run it, in order (FAST):

organiser `event init` -> `event release` -> a team project from `astrobench new anomaly`, installed from the local
kit clone at the commit it was made from (no network: `pip --no-index`) -> `make submit EVENT=<release>` (FAST
training, predictions on the released inputs, packed) -> `astrobench event score` (above the random floor, and the
same number as the Codabench bundle's scoring program) -> a submission made on the public split, rejected in one
line -> the leaderboard, opened in Chromium, with the team ranked and the wrong-split row rejected.

The other tests here check that each scorer refuses predictions made on another split, and scores an old file
(no ``made_on``) with a one-line warning."""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astrobench import baseline, cli, data, event, leaderboard, metrics, project

SECRET = "rehearsal-secret-0123456789"
DATASET = "galaxies-anomaly"
QUICK = "--epochs 1 --threads 1"  # the plumbing, not the model's quality

pytestmark = pytest.mark.skipif(project.kit_checkout() is None,
                                reason="needs a git clone of the kit (a team project installs the kit from it)")


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """A private FAST anomaly event and its release, in a dataset cache of this module's own."""
    root = tmp_path_factory.mktemp("rehearsal")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASTROBENCH_DATA", str(root / "cache"))
        mp.setenv("ASTROBENCH_FAST", "1")
        mp.delenv(event.ENV_VAR, raising=False)
        event.init(SECRET, ["anomaly"], root / "private", progress=False)
        event.release(root / "private", root / "public")
        yield root


def team_env(root: Path) -> dict:
    """A team's shell: FAST, one thread, no event set, nothing of the kit's clone on PYTHONPATH, no package index."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", event.ENV_VAR, "VIRTUAL_ENV")}
    return env | {"ASTROBENCH_DATA": str(root / "cache"), "ASTROBENCH_FAST": "1", "OMP_NUM_THREADS": "1",
                  "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def make(cwd: Path, env: dict, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, f"make {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def public_predictions(path: Path) -> Path:
    """A valid anomaly submission made on the *public* test split (what `make submit` packed before the fix)."""
    test = data.load(DATASET, "test", progress=False)
    a = np.abs(np.asarray(test.images, np.float32)).reshape(len(test), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    baseline.save_predictions(path, test.meta, ("images",), score=a.max(1) / np.maximum(np.median(a, 1), 1e-12))
    (path.parent / "team.json").write_text(json.dumps({"name": "Public", "method": "made on the public split"}))
    return path


def one_line_error(argv, capsys) -> str:
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_the_event_day_runs_end_to_end(day, tmp_path, monkeypatch, capsys):
    from test_codabench import run_like_codabench  # Codabench's scoring step (shared/tests is on sys.path)
    from test_leaderboard_browser import ARGS, CHROMIUM, _sync_playwright

    monkeypatch.setenv("ASTROBENCH_DATA", str(day / "cache"))
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    # a team project, installed from the local clone at the commit it was made from, with no package index
    team = tmp_path / "nova"
    project.new("anomaly", team, team="Nova")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # the kit's dependencies (and pip, setuptools) come from this environment through a .pth, so nothing is
    # downloaded; the kit itself is installed into the new one, from the clone
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "zz_kit_dependencies.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})")
    py = venv / "bin" / "python"
    env = team_env(day)
    install = make(team, env, "install", f"PY={py}")
    head = subprocess.run(["git", "-C", str(project.kit_checkout()), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert f"installing the kit at commit {head} from git+file://" in install.stdout
    where = subprocess.run([str(py), "-c", "import astrobench; print(astrobench.__file__)"], capture_output=True,
                           text=True, env=env, cwd=team).stdout
    assert where.startswith(str(site)), where  # the pinned kit, not the clone this test runs from

    # train.py speaks for itself, and has no --pretrained (the kit's shipped model is not in a team project)
    helped = subprocess.run([str(py), "train.py", "--help"], cwd=team, env=env, capture_output=True, text=True)
    assert helped.stdout.startswith("usage: train.py") and "--pretrained" not in helped.stdout
    assert "default outputs/run" in helped.stdout
    refused = subprocess.run([str(py), "train.py", "--pretrained"], cwd=team, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith("train.py: error: --pretrained")

    # the team enters the event: FAST training, predictions on the released inputs, packed for the organisers
    sub = make(team, env, "submit", f"PY={py}", f"EVENT={day / 'public'}", f"TRAIN_ARGS={QUICK}",
               "METHOD=conv autoencoder", "MEMBERS=Ana, Bo").stdout
    assert "packed anomaly for team 'Nova': the event test split of galaxies-anomaly, FAST, 400 rows" in sub
    entry = team / "submission" / "anomaly" / "nova"
    info = json.loads((entry / "team.json").read_text())
    assert info["method"] == "conv autoencoder" and info["members"] == ["Ana", "Bo"]
    assert info["split"]["source"] == "event" and info["event"]["release"] == "public"

    # the organisers score it against the private truth: above the random floor (AUROC 0.5)
    assert cli.main(["event", "score", "anomaly", str(entry / "predictions.npz"), "--private",
                     str(day / "private")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["auroc"] > 0.6 and scored["n_test"] == 400

    # the Codabench bundle's scoring program gives the same number
    assert cli.main(["codabench", "anomaly", "--out", str(tmp_path / "bundle.zip"), "--private",
                     str(day / "private")]) == 0
    with zipfile.ZipFile(tmp_path / "bundle.zip") as z:
        z.extractall(tmp_path / "bundle")
    with zipfile.ZipFile(tmp_path / "submission.zip", "w") as z:
        z.write(entry / "predictions.npz", "predictions.npz")
    proc = run_like_codabench(tmp_path / "bundle", tmp_path / "codabench", tmp_path / "submission.zip")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "codabench" / "output" / "scores.json").read_text())["auroc"] == scored["auroc"]

    # a submission made on the public test split (same size, plausible numbers) is refused in one line
    wrong = public_predictions(team / "submission" / "anomaly" / "public" / "predictions.npz")
    err = one_line_error(["event", "score", "anomaly", str(wrong), "--private", str(day / "private")], capsys)
    assert "made on the public FAST test split of galaxies-anomaly" in err and "this scores the event's" in err

    # the board: the team ranked with its event score, the wrong-split entry a rejected row
    site_dir = tmp_path / "board"
    leaderboard.build(team / "submission", site_dir, private=day / "private", n_boot=20, timeout=None)
    sync_playwright = _sync_playwright()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto((site_dir / "anomaly.html").as_uri())
            rows = page.locator("#ranking tbody tr")
            ranked = rows.evaluate_all("rs => rs.filter(r => !r.classList.contains('rejected') && r.dataset.team)"
                                       ".map(r => [r.dataset.team, r.cells[0].innerText, r.innerText])")
            assert [r[:2] for r in ranked] == [["nova", "1"]]
            assert "conv autoencoder" in ranked[0][2] and f"{scored['auroc']:.4g}" in ranked[0][2]
            rejected = dict(rows.evaluate_all("rs => rs.filter(r => r.classList.contains('rejected'))"
                                              ".map(r => [r.dataset.team, r.cells[2].innerText])"))
            assert list(rejected) == ["public"]
            assert rejected["public"].startswith("rejected: the predictions were made on the public FAST test split")
            page.screenshot(path=tmp_path / "board.png", full_page=True)
        finally:
            browser.close()


def test_astrobench_score_refuses_predictions_made_on_the_event(day, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASTROBENCH_DATA", str(day / "cache"))
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    monkeypatch.setenv(event.ENV_VAR, str(day / "public"))
    released = data.load(DATASET, "test", progress=False)
    assert released.meta["kind"] == "event"
    path = tmp_path / "predictions.npz"
    baseline.save_predictions(path, released.meta, ("images",), score=np.zeros(len(released)))
    monkeypatch.delenv(event.ENV_VAR)
    err = one_line_error(["score", "anomaly", str(path)], capsys)
    assert "made on the event's FAST test split" in err and "this scores the public FAST test split" in err
    assert "predict without $ASTROBENCH_EVENT" in err


def test_an_old_file_without_made_on_is_scored_with_a_one_line_warning(day, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASTROBENCH_DATA", str(day / "cache"))
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    monkeypatch.delenv(event.ENV_VAR, raising=False)
    path = public_predictions(tmp_path / "new" / "predictions.npz")
    old = tmp_path / "old.npz"
    np.savez(old, **{k: v for k, v in np.load(path).items() if k != metrics.MADE_ON})
    assert cli.main(["score", "anomaly", str(old)]) == 0
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "does not record the split it was made on" in err
    assert cli.main(["score", "anomaly", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out)  # the same split: the same numbers, no warning
    bad = tmp_path / "bad.npz"
    np.savez(bad, score=np.zeros(400), made_on=np.str_("not json"))
    assert "'made_on' is not a record" in one_line_error(["score", "anomaly", str(bad)], capsys)


def test_pack_refuses_public_predictions_for_an_event(day, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASTROBENCH_DATA", str(day / "cache"))
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    monkeypatch.delenv(event.ENV_VAR, raising=False)
    path = public_predictions(tmp_path / "run" / "predictions.npz")
    monkeypatch.setenv(event.ENV_VAR, str(day / "public"))
    rc = project.main(["pack", str(path), "--target", "anomaly", "--team", "Nova", "--out", str(tmp_path / "sub")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "made on the public FAST test split" in err
    assert not (tmp_path / "sub").exists()


def test_the_kits_script_predicts_on_a_release_with_its_shipped_model(day, tmp_path, monkeypatch, capsys):
    """`ASTROBENCH_EVENT=<release> python anomaly/autoencoder.py --fast --pretrained`: predictions on the released
    inputs (no labels there: nothing is scored), which the organisers' scorer takes."""
    script = project.kit_checkout() / "anomaly" / "autoencoder.py"
    env = team_env(day) | {event.ENV_VAR: str(day / "public")}
    proc = subprocess.run([sys.executable, str(script), "--fast", "--pretrained", "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "predictions on the event's 400 test inputs" in proc.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["n_test"] == 400
    monkeypatch.setenv("ASTROBENCH_DATA", str(day / "cache"))
    assert cli.main(["event", "score", "anomaly", str(tmp_path / "predictions.npz"), "--private",
                     str(day / "private")]) == 0
    assert json.loads(capsys.readouterr().out)["auroc"] > 0.6


def test_a_file_that_is_not_an_npz_is_one_line_without_numpys_advice(tmp_path, capsys):
    (tmp_path / "bad.txt").write_text("not an archive\n")
    err = one_line_error(["score", "anomaly", str(tmp_path / "bad.txt")], capsys)
    assert "not a readable .npz file" in err and "pickle" not in err
