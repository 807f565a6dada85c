"""Bring your own simulator: a task defined here (a numpy simulator, no likelihood, no reference posterior) is
registered, trained by sbi/npe.py in FAST mode and scored by `astrobench score`, by calibration (SBC, TARP) and
posterior-predictive checks alone. Its posterior is known in closed form, so the scorer is also checked on it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astrobench import cli
from astrobench.metrics import ScoreInputError, score
from astrobench.sim.sbi_tasks import get_task, names, register, unregister
from astrobench.sim.sbi_tasks.base import BaseTask, NoLikelihoodError, observation_hash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import npe

SIGMA = 0.2


class Shift(BaseTask):
    """x = theta + SIGMA * N(0, 1) in plain numpy (not a GaussianTask: as far as the kit knows, no likelihood)."""

    name = "test-shift"
    param_names = ("a", "b")
    labels = ("a", "b")
    low = np.array([-2.0, -2.0], np.float32)
    high = np.array([2.0, 2.0], np.float32)
    x_shape = (2,)
    observation_seed = 11

    def simulator(self, theta, seed):
        return theta + SIGMA * np.random.default_rng(seed).standard_normal(theta.shape)


def exact_posterior(x, num, seed, scale=1.0, shift=0.0):
    """(num, len(x), 2) samples of N(x + shift * SIGMA, (scale * SIGMA)^2) truncated to the box: the exact posterior
    for scale 1, shift 0."""
    from scipy.stats import truncnorm

    loc, sd = x + shift * SIGMA, scale * SIGMA
    a, b = (Shift.low - loc) / sd, (Shift.high - loc) / sd
    return truncnorm.rvs(a, b, loc=loc, scale=sd, size=(num, *x.shape), random_state=seed).astype(np.float32)


@pytest.fixture
def shift_task():
    register(Shift)
    yield get_task("test-shift")
    unregister("test-shift")


def test_register_a_task(shift_task):
    assert "test-shift" in names() and not shift_task.has_reference and not shift_task.has_likelihood
    theta, x = shift_task.true_parameters(), shift_task.observations()  # simulated from observation_seed
    assert theta.shape == (10, 2) and x.shape == (10, 2) and np.all(np.abs(theta) <= 2)
    np.testing.assert_array_equal(x, get_task("test-shift").observations())
    meta = npe.task_meta(shift_task)
    assert meta["sha256"] == observation_hash(theta, x) and meta["version"] == meta["sha256"][:12]
    assert npe.embedding_kind(shift_task) == "vector"
    with pytest.raises(NoLikelihoodError, match="no tractable likelihood"):
        shift_task.log_likelihood(theta[0], x[0])
    with pytest.raises(ValueError, match="exists already"):
        register(Shift)
    with pytest.raises(ValueError, match="expected a subclass"):
        register(object)


def test_a_simulator_with_the_wrong_shape_is_one_line(shift_task):
    class Bad(Shift):
        name = "test-bad"

        def simulator(self, theta, seed):
            return np.zeros((len(theta), 3))

    with pytest.raises(ValueError, match=r"shape \(4, 3\); expected \(4, 2\)"):
        Bad().simulate(np.zeros((4, 2)))


def _pred(task, **kw):
    calib_theta = task.sample_prior(200, seed=3)
    calib_x = task.simulate(calib_theta, seed=4)
    return {"samples": exact_posterior(task.observations(), 1000, 1, **kw).transpose(1, 0, 2),
            "calib_samples": exact_posterior(calib_x, 100, 2, **kw), "calib_theta": calib_theta}


def test_without_reference_the_score_is_calibration_and_ppc(shift_task):
    pred = _pred(shift_task)
    with pytest.raises(ScoreInputError, match=r"no reference posterior.*expected keys calib_samples"):
        score("sbi:test-shift", {"samples": pred["samples"]})
    good = score("sbi:test-shift", pred)
    assert "c2st_mean" not in good and "amortisation_ratio" not in good
    assert not good["sbc_rejected"] and not good["tarp_rejected"] and good["ppc_pval_min"] > 0.01
    narrow = score("sbi:test-shift", _pred(shift_task, scale=0.5))
    assert narrow["sbc_rejected"] and narrow["tarp_rejected"]
    off = score("sbi:test-shift", _pred(shift_task, shift=5.0))  # the predictive misses every observation
    assert off["ppc_pval_min"] < 0.02 and max(off["ppc_pvals"]) < 0.05


@pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")  # nflows, inside sbi
def test_custom_simulator_end_to_end(shift_task, tmp_path):
    out = tmp_path / "run"
    assert npe.main(["--fast", "--task", "test-shift", "--num-sims", "500", "--epochs", "5", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    m = report["metrics"]
    assert report["task"] == "test-shift" and report["config"]["cnn"] is None  # a vector: no embedding
    assert {"sbc_ks_pval_min", "tarp_ks_pval", "tarp_atc", "ppc_pvals"} <= set(m) and "c2st_mean" not in m
    assert (out / "ppc.png").is_file() and (out / "corner_obs0.png").is_file()
    assert cli.main(["score", "sbi:test-shift", str(out / "predictions.npz"), "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(json.dumps(m))  # the baseline's numbers


PLUGIN = '''
import numpy as np
from astrobench.sim.sbi_tasks.base import BaseTask


class PluginShift(BaseTask):
    name = "plugin-shift"
    param_names = labels = ("a", "b")
    low, high = np.array([-2.0, -2.0], np.float32), np.array([2.0, 2.0], np.float32)
    x_shape, observation_seed = (2,), 11

    def simulator(self, theta, seed):
        return theta + 0.2 * np.random.default_rng(seed).standard_normal(theta.shape)
'''


def test_an_installed_package_s_task_is_found_by_every_process(tmp_path, monkeypatch):
    """A task declared as an entry point (group astrobench.sbi_tasks) by an installed package: get_task finds it,
    and `astrobench score sbi:<name>` in a fresh process scores it exactly as in this one."""
    import os
    import subprocess

    (tmp_path / "plugin_shift.py").write_text(PLUGIN)
    info = tmp_path / "plugin_shift-0.1.dist-info"  # what `pip install` of a package with the entry point leaves
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-shift\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[astrobench.sbi_tasks]\nplugin-shift = plugin_shift:PluginShift\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "plugin-shift" in names()
    task = get_task("plugin-shift")
    np.testing.assert_array_equal(task.observations(), Shift().observations())  # the same simulator and seed
    pred = _pred(task)
    np.savez(tmp_path / "pred.npz", **pred)
    expected = score("sbi:plugin-shift", pred)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "astrobench.cli", "score", "sbi:plugin-shift",
                           str(tmp_path / "pred.npz"), "--json", str(tmp_path / "s.json")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(json.dumps(expected))
    (info / "entry_points.txt").write_text("[astrobench.sbi_tasks]\nplugin-shift = json:loads\n")
    with pytest.raises(ValueError, match="expected a subclass"):
        get_task("plugin-shift")


def test_two_moons_without_its_references_is_scored_by_calibration_alone(tmp_path, monkeypatch):
    from astrobench.sim.sbi_tasks.two_moons import Task

    monkeypatch.setattr(Task, "reference_file", property(lambda self: tmp_path / "none.npz"))
    task = get_task("two_moons")
    assert not task.has_reference
    theta, x = task.simulate_observations()  # the observations now come from observation_seed
    np.testing.assert_array_equal(task.observations(), x)
    assert npe.task_meta(task)["sha256"] == observation_hash(theta, x)
    prior = task.sample_prior(1000, seed=1)  # the prior as the "posterior": calibrated, and useless
    with pytest.raises(ScoreInputError, match="no reference posterior"):
        score("sbi:two_moons", {"samples": np.stack([prior] * 10)})
    calib_theta = task.sample_prior(200, seed=2)
    m = score("sbi:two_moons", {"samples": np.stack([prior] * 10), "calib_theta": calib_theta,
                                "calib_samples": np.stack([task.sample_prior(200, seed=3 + i) for i in range(100)])})
    assert "c2st_mean" not in m and not m["calibration_rejected"]  # calibration is not accuracy
    assert len(m["ppc_pvals"]) == 10


@pytest.mark.parametrize(("name", "kind"), [("galaxy-profile", "image"), ("lightcurve", "sequence"),
                                            ("two_moons", "vector")])
def test_the_embedding_follows_the_data_shape(name, kind, monkeypatch):
    task = get_task(name)
    assert npe.embedding_kind(task) == kind
    monkeypatch.setattr(type(task), "x_kind", "vector")  # a task can say what its x is
    assert npe.embedding_kind(task) == "vector"
    monkeypatch.setattr(type(task), "x_kind", None)
    monkeypatch.setattr(type(task), "x_shape", (3, 8, 8))
    with pytest.raises(npe.baseline.BaselineError, match=r"expected \(H, W\) or \(L,\)"):
        npe.embedding_kind(task)
