"""The Codabench bundle: its scoring program, run the way Codabench runs it, gives the scores of `astrobench score`."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from astrobench import cli, codabench, event

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"anomaly": "anomaly", "superres:fields": "superres:superres-fields"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """A private FAST event (anomaly, superres) and one unzipped bundle per target."""
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


def run_like_codabench(bundle: Path, work: Path, submission: Path, env_extra=None):
    """Codabench's scoring step: program in /app/program, submission unzipped in input/res, reference data in
    input/ref, `command` of metadata.yaml with /app replaced by ``work``; scores in output/scores.json."""
    import shutil

    shutil.copytree(bundle / "scoring_program", work / "program")
    shutil.copytree(bundle / "reference_data", work / "input" / "ref")
    with zipfile.ZipFile(submission) as z:
        z.extractall(work / "input" / "res")
    (work / "output").mkdir()
    command = yaml.safe_load((work / "program" / "metadata.yaml").read_text())["command"]
    assert command == "python3 /app/program/score.py /app/input /app/output"
    argv = [sys.executable, *command.replace("/app", str(work)).split()[1:]]
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
