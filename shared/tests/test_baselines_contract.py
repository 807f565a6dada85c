"""The five baseline scripts share one shape: the common flags, <= 350 lines with a marked model slot, one-line
errors on bad input (exit 2, nothing written), and FAST numbers that do not depend on the clock.

The reproducibility check runs each script twice in FAST mode, once with the clock sped up 40x by libfaketime
(`faketime -f "+0 x40"`), and compares metrics.json["metrics"] apart from keys that are times. A learning-rate
schedule or a stop that followed the wall clock would change the numbers (measured before the fix: anomaly AUROC
0.819 instead of 0.857). The budgets here are small (the FAST settings with fewer steps) to keep `make test`
short; `python benchmarks/check_reproducible.py` runs the same check with the full FAST budgets.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astrobench.cli import BASELINES

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {track: ROOT / script for track, script in BASELINES.items()}
SCRIPTS["anomaly-timeseries"] = ROOT / "anomaly" / "timeseries.py"  # a track's second baseline (anomaly:lightcurves)
SCRIPTS["superres-stochastic"] = ROOT / "superres" / "stochastic.py"  # superres:nbody, the stochastic baseline
BUDGET = {"generative": "--steps", "sbi": "--epochs", "multimodal": "--epochs", "anomaly": "--epochs",
          "superres": "--steps", "anomaly-timeseries": "--epochs",
          "superres-stochastic": "--steps"}
# small budgets for the faketime comparison (the FAST settings otherwise)
SMALL = {"generative": ["--steps", "6"], "sbi": ["--epochs", "3", "--num-sims", "300"], "multimodal": ["--epochs", "1"],
         "anomaly": ["--epochs", "1"], "superres": ["--steps", "20"], "anomaly-timeseries": ["--epochs", "1"],
         "superres-stochastic": ["--steps", "10"]}
COMMON = ("--fast", "--out", "--seed", "--device", "--dataset", "--threads", "--max-minutes", "--set", "--pretrained",
          "--grad-accum", "--mixed-precision")
TIME_WORDS = ("second", "time", "latency", "amortisation", "_ms", "speed")


def load(track: str):
    """The script as a module (its own folder on sys.path, as when it runs)."""
    path = SCRIPTS[track]
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"contract_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("track", SCRIPTS)
def test_one_shape(track, capsys):
    text = SCRIPTS[track].read_text()
    assert len(text.splitlines()) <= 350, f"{SCRIPTS[track].name}: {len(text.splitlines())} lines"
    assert text.count("MODEL SLOT") == 1 and "def build_model(" in text
    assert "Replace this with your model. Interface:" in text
    assert "getloadavg" not in text and 'sys.exit(main())' in text
    module = load(track)
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for flag in (*COMMON, BUDGET[track]):
        assert flag in help_text, f"{track}: {flag} missing from --help"
    assert module.FULL.keys() == module.FAST.keys()


BAD = [
    (["--seed", "-1"], "--seed -1"),
    (["--max-minutes", "-2"], "--max-minutes"),
    (["--threads", "0"], "--threads 0"),
    (["--mixed-precision", "fp16", "--device", "cpu"], "fp16"),
    (["--set", "no_such_key=1"], "--set"),
    (["--device", "tpu"], "--device"),
    (["--seed", "x"], "--seed"),
]


@pytest.mark.parametrize("track", SCRIPTS)
def test_bad_common_input_is_one_line_and_exit_2(track, tmp_path, capsys, monkeypatch):
    module = load(track)
    out = tmp_path / "out"
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = [*BAD, ([BUDGET[track], "0"], BUDGET[track]), ([BUDGET[track], "-3"], BUDGET[track]),
             (["--out", str(afile)], "is a file"), (["--out", "/proc/astrobench-out"], "not writable")]
    for argv, needle in cases:
        args = ["--fast", "--out", str(out), *argv] if "--out" not in argv else ["--fast", *argv]
        assert module.main(args) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
        assert not out.exists()
    for var, value, needle in (("ASTROBENCH_FAST", "maybe", "ASTROBENCH_FAST"),
                               ("ASTROBENCH_DATA", str(afile), "ASTROBENCH_DATA"),
                               ("OMP_NUM_THREADS", "lots", "OMP_NUM_THREADS")):
        with monkeypatch.context() as m:
            m.setenv(var, value)
            assert module.main(["--out", str(out)]) == 2, var
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, (var, err)
        assert not out.exists()


def metrics_without_times(path: Path) -> dict:
    def strip(d):
        return {k: strip(v) if isinstance(v, dict) else v for k, v in d.items()
                if not any(w in k.lower() for w in TIME_WORDS)}

    return strip(json.loads(path.read_text())["metrics"])


@pytest.mark.slow
@pytest.mark.parametrize("track", SCRIPTS)
def test_fast_metrics_do_not_depend_on_the_clock(track, tmp_path):
    faketime = shutil.which("faketime")
    if faketime is None:
        if os.environ.get("CI"):
            pytest.fail("faketime is missing: .ci/run installs the Debian package")
        pytest.skip("faketime not installed (apt-get install faketime)")
    # ASTROBENCH_FAST=1 and no --fast: the environment alone selects FAST
    env = dict(os.environ, ASTROBENCH_FAST="1", OMP_NUM_THREADS="1")
    results = []
    for name, prefix in (("normal", []), ("fast_clock", [faketime, "-f", "+0 x40"])):
        out = tmp_path / name
        cmd = [*prefix, sys.executable, str(SCRIPTS[track]), "--threads", "1", "--device", "cpu", "--out", str(out),
               *SMALL[track]]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads((out / "metrics.json").read_text())
        assert report["config"]["mode"] == "fast" and report["config"]["threads"] == 1
        assert report["stopped_by_clock"] is False
        results.append(metrics_without_times(out / "metrics.json"))
    assert results[0] == results[1]
