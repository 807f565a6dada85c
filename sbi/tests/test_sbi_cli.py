"""sbi/npe.py's command line: the settings, --task as an alias of --dataset, one-line errors (exit 2, nothing
written), and the training call (one sbi call to convergence; chunks only under --max-minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import npe  # noqa: E402


def test_full_and_fast_settings_and_flags():
    assert npe.FULL.keys() == npe.FAST.keys() and set(npe.MINIMUM) <= set(npe.FULL)
    assert npe.FAST["num_sims"] < npe.FULL["num_sims"] and npe.FAST["epochs"] < npe.FULL["epochs"]
    assert npe.parser().parse_args([]).dataset == npe.DEFAULT_TASK
    assert npe.parser().parse_args(["--task", "galaxy-profile"]).dataset == "galaxy-profile"
    assert npe.parser().parse_args(["--dataset", "galaxy-profile"]).dataset == "galaxy-profile"
    assert not hasattr(npe, "MAX_MINUTES") and not hasattr(npe, "TORCH_THREADS")


BAD = [
    (["--num-sims", "0"], "--num-sims 0: expected at least 100"),
    (["--num-sims", "99"], "--num-sims 99"),
    (["--num-sims", "many"], "--num-sims"),
    (["--set", "num_sims=10"], "--num-sims 10"),
    (["--epochs", "0"], "epochs"),
    (["--task", "no-such-task"], "expected one of galaxy-profile, lightcurve, two_moons"),
    (["--dataset", "no-such-task"], "expected one of galaxy-profile, lightcurve, two_moons"),
    (["--set", "num_samples=100"], "--set num_samples 100: expected at least 1000"),
    (["--set", "calib_sims=50"], "--set calib_sims 50: expected at least 200"),
    (["--set", "calib_samples=99"], "--set calib_samples 99: expected at least 100"),
    (["--set", "flow=glow"], "flow one of"),
    (["--set", "lr=0"], "expected lr > 0"),
    (["--set", "nope=1"], "expected KEY=VALUE"),
    (["--set", "epochs=many"], "expected a int"),
    (["--grad-accum", "2"], "sbi's NPE.train has neither"),
    (["--mixed-precision", "bf16"], "sbi's NPE.train has neither"),
    (["--seed", "-1"], "--seed -1"),
    (["--threads", "0"], "--threads 0"),
    (["--max-minutes", "0"], "--max-minutes 0"),
    (["--max-epochs", "3"], "unrecognized arguments"),
    (["--device", "tpu"], "invalid choice"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_are_one_line_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    rc = npe.main(["--fast", "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("npe.py: error: ") and message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("env", "value"), [("ASTROBENCH_FAST", "maybe"), ("OMP_NUM_THREADS", "two")])
def test_bad_environment_is_a_one_line_error(tmp_path, capsys, monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    rc = npe.main(["--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and env in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_and_cuda_without_gpu(tmp_path, capsys):
    import torch

    (tmp_path / "f").write_text("")
    assert npe.main(["--fast", "--out", str(tmp_path / "f")]) == 2
    assert "is a file" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert npe.main(["--fast", "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
        assert capsys.readouterr().err.strip() == ("npe.py: error: --device cuda: no CUDA GPU visible to torch; "
                                                   "expected --device cpu or auto")
        assert not (tmp_path / "o").exists()


class FakeNPE:
    """Records NPE.train's calls; 'trains' max_num_epochs + 1 epochs as sbi 0.27 does (or converges at `stop`)."""

    def __init__(self, stop=None):
        self.calls, self.epoch, self.stop = [], 0, stop
        self.summary = {"epochs_trained": []}

    def append_simulations(self, theta, x):
        pass

    def train(self, max_num_epochs, resume_training=False, **kwargs):
        self.calls.append((max_num_epochs, resume_training))
        end = max_num_epochs + 1
        self.epoch = min(end, self.stop) if self.stop else end
        self.summary["epochs_trained"].append(self.epoch)

    def build_posterior(self):
        return "posterior"


class FakeRun:
    def __init__(self, max_minutes, late_after):
        self.max_minutes, self.late_after, self.checks, self.stopped_by_clock = max_minutes, late_after, 0, False

        class Acc:
            num_processes = 1

        self.acc = Acc()

    def out_of_time(self, collective=True):
        self.checks += 1
        self.stopped_by_clock = self.checks >= self.late_after
        return self.stopped_by_clock


def test_training_is_one_sbi_call_unless_max_minutes():
    cfg = dict(npe.FULL, epochs=12)
    fake = FakeNPE()
    assert npe.train(fake, None, None, cfg) == "posterior"
    assert fake.calls == [(11, False)] and fake.summary["epochs_trained"] == [12]  # at most --epochs epochs
    fake = FakeNPE()
    npe.train(fake, None, None, cfg, FakeRun(None, 1))  # a run without --max-minutes: still one call
    assert fake.calls == [(11, False)]
    fake, run = FakeNPE(), FakeRun(5.0, late_after=2)  # --max-minutes: chunks, stopped by the clock
    npe.train(fake, None, None, cfg, run)
    assert fake.calls == [(4, False), (9, True)] and run.stopped_by_clock
    fake, run = FakeNPE(stop=7), FakeRun(5.0, late_after=99)  # converged inside the second chunk
    npe.train(fake, None, None, cfg, run)
    assert fake.calls == [(4, False), (9, True)] and not run.stopped_by_clock
    fake, run = FakeNPE(), FakeRun(5.0, late_after=99)  # the epoch budget ends it
    npe.train(fake, None, None, cfg, run)
    assert fake.calls == [(4, False), (9, True), (11, True)] and fake.summary["epochs_trained"][-1] == 12
