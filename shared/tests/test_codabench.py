"""The Codabench bundle: its scoring program, run the way Codabench runs it, gives the scores of `astrobench score`."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from astrobench import cli, codabench, event

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"anomaly": "anomaly", "anomaly:lightcurves": "anomaly:lightcurves",
           "superres:fields": "superres:superres-fields"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """A private FAST event (anomaly, superres) and one unzipped bundle per target."""
    kit = Path(codabench.__file__).resolve().parents[2]  # a clone's root; an installed package's site-packages
    if not all(any(kit.glob(f"{t.split(':')[0]}/02_*.ipynb")) for t in TARGETS):
        pytest.skip("needs a clone of the kit: a bundle ships the track's notebook from beside the astrobench it "
                    f"runs (an installed package has none: {kit})")
    root = tmp_path_factory.mktemp("codabench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASTROBENCH_DATA", str(root / "cache"))
        mp.setenv("ASTROBENCH_FAST", "1")
        mp.delenv(event.ENV_VAR, raising=False)
        event.init("codabench-test-secret-0123", ["anomaly", "superres"], root / "private", progress=False)
        out = {}
        for target in TARGETS:
            name = target.replace(":", "_")
            assert cli.main(["codabench", target, "--out", str(root / f"{name}.zip"),
                             "--private", str(root / "private")]) == 0
            with zipfile.ZipFile(root / f"{name}.zip") as z:
                z.extractall(root / name)
            out[target] = root / name
        yield root, out


def run_like_codabench(bundle: Path, work: Path, submission: Path, env_extra=None, python=sys.executable):
    """Codabench's scoring step: program in /app/program, submission unzipped in input/res, reference data in
    input/ref, `command` of metadata.yaml with /app replaced by ``work`` (its python3: ``python``); scores in
    output/scores.json."""
    shutil.copytree(bundle / "scoring_program", work / "program")
    shutil.copytree(bundle / "reference_data", work / "input" / "ref")
    with zipfile.ZipFile(submission) as z:
        z.extractall(work / "input" / "res")
    (work / "output").mkdir()
    command = yaml.safe_load((work / "program" / "metadata.yaml").read_text())["command"]
    assert command == "python3 /app/program/score.py /app/input /app/output"
    argv = [python, *command.replace("/app", str(work)).split()[1:]]
    # a bare worker: no dataset cache to generate into, no FAST setting, no event variable
    env = {k: v for k, v in os.environ.items() if k not in ("ASTROBENCH_FAST", event.ENV_VAR, "CI")}
    env.update(ASTROBENCH_DATA=str(work / "no-cache"), **(env_extra or {}))
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work)
    assert not (work / "no-cache").exists()  # scored from the bundle alone
    return proc


@pytest.mark.parametrize("target", TARGETS)
def test_scoring_program_gives_the_scores_of_astrobench_score(bundles, target, tmp_path, monkeypatch, capsys):
    root, out = bundles
    bundle = out[target]
    comp = yaml.safe_load((bundle / "competition.yaml").read_text())
    proc = run_like_codabench(bundle, tmp_path, bundle / "starting_kit" / "sample_submission.zip")
    assert proc.returncode == 0, proc.stderr
    scores = json.loads((tmp_path / "output" / "scores.json").read_text())
    cols = sorted(comp["leaderboards"][0]["columns"], key=lambda c: c["index"])
    assert list(scores) == [c["key"] for c in cols]  # the keys are the leaderboard's columns
    # the same numbers as `astrobench score` with the reference data as the event, and as `astrobench event score`
    pred = tmp_path / "input" / "res" / "predictions.npz"
    monkeypatch.setenv("ASTROBENCH_DATA", str(root / "cache"))
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    monkeypatch.setenv(event.ENV_VAR, str(bundle / "reference_data"))
    assert cli.main(["score", TARGETS[target], str(pred)]) == 0
    expected = codabench.flatten(json.loads(capsys.readouterr().out))
    assert scores == {k: expected[k] for k in scores}
    monkeypatch.delenv(event.ENV_VAR)
    assert cli.main(["event", "score", TARGETS[target], str(pred), "--private", str(root / "private")]) == 0
    assert scores == {k: v for k, v in codabench.flatten(json.loads(capsys.readouterr().out)).items() if k in scores}
    assert json.loads((bundle / "starting_kit" / "sample_scores.json").read_text()) == scores


def test_bundle_follows_the_codabench_v2_layout(bundles):
    _, out = bundles
    bundle = out["anomaly"]
    comp = yaml.safe_load((bundle / "competition.yaml").read_text())
    assert comp["version"] == 2
    for path in (comp["image"], comp["terms"], *(p["file"] for p in comp["pages"]),
                 comp["tasks"][0]["scoring_program"], comp["tasks"][0]["reference_data"],
                 comp["phases"][0]["starting_kit"], comp["phases"][0]["public_data"], comp["solutions"][0]["path"]):
        assert (bundle / path).exists(), path
    cols = comp["leaderboards"][0]["columns"]
    assert cols[0]["key"] == "auroc" and cols[0]["index"] == 0 and cols[0]["sorting"] == "desc"  # ranks the board
    assert {c["key"] for c in cols if c["hidden"]} == {"n_test", "n_anomalies"}
    assert comp["phases"][0]["accepts_only_result_submissions"] is True
    scoring = json.loads((bundle / "scoring_program" / "scoring.json").read_text())
    assert scoring["requires_python"] == ">=" + ".".join(map(str, _requires_python()))  # declared for the image
    assert scoring["docker_image"] == comp["docker_image"] == codabench.DEFAULT_IMAGE
    # the scorer the bundle runs is this kit's, byte for byte
    vendored = bundle / "scoring_program" / "astrobench"
    for rel in ("metrics/anomaly.py", "metrics/__init__.py", "event.py", "data/__init__.py"):
        assert (vendored / rel).read_bytes() == (ROOT / "shared" / "astrobench" / rel).read_bytes()
    # reference data: only what the scorer reads (labels), no seed; public data: the inputs, no truth
    ref = bundle / "reference_data" / "galaxies-anomaly"
    assert sorted(p.name for p in ref.iterdir()) == ["manifest.json", "test.truth.npy"]
    assert "seed" not in json.loads((ref / "manifest.json").read_text())
    pub = bundle / "public_data" / "galaxies-anomaly"
    assert sorted(p.name for p in pub.iterdir()) == ["manifest.json", "test.images.npy"]
    kit = sorted(p.name for p in (bundle / "starting_kit").iterdir())
    assert "02_autoencoder_baseline.ipynb" in kit and "sample_submission.zip" in kit


def test_scoring_program_rejects_a_bad_submission_in_one_line(bundles, tmp_path):
    _, out = bundles
    np.savez(tmp_path / "predictions.npz", score=np.zeros(7, np.float32))
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.write(tmp_path / "predictions.npz", "predictions.npz")
    proc = run_like_codabench(out["anomaly"], tmp_path / "w", tmp_path / "bad.zip")
    assert proc.returncode == 2 and proc.stderr.startswith("rejected: 7 rows")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "w" / "output" / "scores.json").exists()


def test_scoring_program_rejects_predictions_made_on_another_split(bundles, tmp_path):
    _, out = bundles
    with zipfile.ZipFile(out["anomaly"] / "starting_kit" / "sample_submission.zip") as z:
        z.extractall(tmp_path / "sample")
    pred = dict(np.load(tmp_path / "sample" / "predictions.npz"))
    made = json.loads(str(pred["made_on"]))
    assert made["source"] == "event" and made["inputs"]["images"]  # the sample was made on the released inputs
    made.update(source="public", inputs={"images": "0" * 64})  # same rows, another split's images
    np.savez(tmp_path / "predictions.npz", **{**pred, "made_on": np.str_(json.dumps(made))})
    with zipfile.ZipFile(tmp_path / "wrong.zip", "w") as z:
        z.write(tmp_path / "predictions.npz", "predictions.npz")
    proc = run_like_codabench(out["anomaly"], tmp_path / "w", tmp_path / "wrong.zip")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("rejected: the predictions were made on the public FAST test split of "
                                  "galaxies-anomaly") and "this scores the event's FAST test split" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "w" / "output" / "scores.json").exists()


def test_codabench_bad_input_gets_one_line_and_exit_2(bundles, tmp_path, capsys, monkeypatch):
    root, _ = bundles
    monkeypatch.setenv("ASTROBENCH_DATA", str(root / "cache"))
    private = str(root / "private")
    cases = [
        (["codabench", "generative", "--out", str(tmp_path / "b.zip"), "--private", private], "not in the event"),
        (["codabench", "nope", "--out", str(tmp_path / "b.zip"), "--private", private], "unknown track"),
        (["codabench", "anomaly", "--out", str(tmp_path / "b.tar"), "--private", private], "expected a .zip"),
        (["codabench", "superres:nope", "--out", str(tmp_path / "b.zip"), "--private", private], "unknown superres"),
        (["codabench", "anomaly", "--out", str(tmp_path / "b.zip"), "--private", str(tmp_path)], "not a private"),
    ]
    for args, needle in cases:
        assert cli.main(args) == 2, args
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
    assert not list(tmp_path.iterdir())  # nothing half-written


def _requires_python() -> tuple:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert spec.startswith(">="), spec
    return tuple(int(v) for v in spec[2:].split("."))


def test_default_image_has_the_python_the_kit_requires():
    import astrobench

    minimum = _requires_python()
    assert astrobench.REQUIRES_PYTHON == minimum  # what the bundle's copy of the package enforces
    # the image's Python from its tag: python:3.11-slim, or CodaLab's codalab/codalab-legacy:py39
    found = re.search(r"(?:^|/)python:(\d+)\.(\d+)", codabench.DEFAULT_IMAGE) or \
        re.search(r":py(\d)(\d+)\b", codabench.DEFAULT_IMAGE)
    assert found, f"no Python version in the tag of {codabench.DEFAULT_IMAGE}"
    assert tuple(map(int, found.groups())) >= minimum, (codabench.DEFAULT_IMAGE, minimum)


def _python(major: int, minor: int):
    """An interpreter of exactly that version: $ASTROBENCH_TEST_PYTHON<major><minor>, python<major>.<minor> on the
    PATH, or pyenv's; None if there is none."""
    root = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions"
    for cand in (os.environ.get(f"ASTROBENCH_TEST_PYTHON{major}{minor}"), shutil.which(f"python{major}.{minor}"),
                 *sorted(map(str, root.glob(f"{major}.{minor}.*/bin/python")))):
        if cand and subprocess.run([cand, "-c", f"import sys; sys.exit(sys.version_info[:2] != ({major}, {minor}))"],
                                   capture_output=True).returncode == 0:
            return cand
    return None


def test_scoring_program_runs_under_the_oldest_python_the_kit_supports(bundles, tmp_path):
    """Python 3.10, requires-python's floor: the bundle's scoring program compiles, and scores the sample submission
    as this Python does where the interpreter has the scorer's dependencies (else it gets past the version check and
    names the missing module in one line)."""
    major, minor = _requires_python()[:2]
    python = _python(major, minor)
    if python is None:
        pytest.skip(f"no python{major}.{minor} here (set ASTROBENCH_TEST_PYTHON{major}{minor})")
    _, out = bundles
    bundle = out["anomaly"]
    compiled = subprocess.run([python, "-m", "compileall", "-q", "-d", "program", str(bundle / "scoring_program")],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)})
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr  # no syntax newer than the floor
    proc = run_like_codabench(bundle, tmp_path / "w", bundle / "starting_kit" / "sample_submission.zip",
                              python=python)
    deps = subprocess.run([python, "-c", "import numpy, scipy, sklearn, astropy, yaml, filelock, tqdm"],
                          capture_output=True).returncode == 0
    if not deps:
        assert proc.returncode == 2 and "No module named" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "needs Python" not in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    here = run_like_codabench(bundle, tmp_path / "here", bundle / "starting_kit" / "sample_submission.zip")
    assert here.returncode == 0, here.stderr
    assert json.loads((tmp_path / "w" / "output" / "scores.json").read_text()) == \
        json.loads((tmp_path / "here" / "output" / "scores.json").read_text())


def test_scoring_program_refuses_an_older_python_in_one_line(bundles, tmp_path):
    major, minor = _requires_python()[:2]
    python = _python(major, minor - 1)
    if python is None:
        pytest.skip(f"no python{major}.{minor - 1} here (set ASTROBENCH_TEST_PYTHON{major}{minor - 1})")
    _, out = bundles
    proc = run_like_codabench(out["anomaly"], tmp_path, out["anomaly"] / "starting_kit" / "sample_submission.zip",
                              python=python)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"astrobench needs Python >= {major}.{minor}; this is Python {major}.{minor - 1}" in proc.stderr
