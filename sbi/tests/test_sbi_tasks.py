"""SBI tasks: priors, simulators, likelihoods and the committed reference posteriors, for every registered task
(the Gaussian-likelihood checks for the GaussianTasks, the reference checks for the tasks that ship one)."""

import json

import numpy as np
import pytest
from astrobench.sim.sbi_tasks import get_task, names
from astrobench.sim.sbi_tasks.base import GaussianTask, NoLikelihoodError, observation_hash

TASKS = names()
LIKELIHOOD = [n for n in TASKS if get_task(n).has_likelihood]
REFERENCE = [n for n in TASKS if get_task(n).has_reference]


def test_task_names():
    assert {"galaxy-profile", "lightcurve", "two_moons"} <= set(TASKS)
    assert {"galaxy-profile", "lightcurve"} <= set(LIKELIHOOD) and "two_moons" not in LIKELIHOOD
    with pytest.raises(ValueError, match="expected one of"):
        get_task("no-such-task")


@pytest.mark.parametrize("name", TASKS)
def test_prior_and_simulator(name):
    task = get_task(name)
    assert 1 <= task.dim <= 10 and len(task.labels) == task.dim == len(task.low) == len(task.high)
    theta = task.sample_prior(300, seed=1)
    assert theta.shape == (300, task.dim) and theta.dtype == np.float32
    assert np.all(theta >= task.low) and np.all(theta <= task.high)
    x = task.simulate(theta, seed=2)
    assert x.shape == (300, *task.x_shape) and x.dtype == np.float32 and np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, task.simulate(theta, seed=2))  # deterministic from the seed
    assert not np.array_equal(x, task.simulate(theta, seed=3))
    if not isinstance(task, GaussianTask):
        return
    # the noise is exactly the likelihood's: standardised residuals are N(0, 1)
    r = (x - task.simulate(theta, noise=False)) / np.broadcast_to(task.noise_sigma, task.x_shape)
    assert abs(r.mean()) < 0.02 and abs(r.std() - 1) < 0.02


@pytest.mark.parametrize("name", LIKELIHOOD)
def test_likelihood_peaks_near_truth_and_is_differentiable(name):
    import jax
    import jax.numpy as jnp

    task = get_task(name)
    theta = task.sample_prior(32, seed=5)
    x = task.simulate(theta[:1], seed=6)[0]
    ll = jax.jit(jax.vmap(task.log_likelihood, in_axes=(0, None)))(jnp.asarray(theta), jnp.asarray(x))
    assert float(ll[0]) >= float(jnp.max(ll[1:]))  # the true parameters beat 31 prior draws
    grad = jax.jit(jax.grad(task.log_likelihood))(jnp.asarray(theta[0]), jnp.asarray(x))
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0)


def test_galaxy_image_has_the_model_flux():
    task = get_task("galaxy-profile")
    theta = np.array([[3.0, 1.5, 0.3, 0.1, -0.1]], np.float32)
    img = task.simulate(theta, noise=False)[0]
    assert abs(img.sum() / 1000.0 - 1) < 0.02  # a compact galaxy keeps ~all its flux in the 32x32 stamp
    assert np.unravel_index(img.argmax(), img.shape) in {(15, 15), (15, 16), (16, 15), (16, 16)}


def test_transit_depth_and_timing():
    from astrobench.sim.sbi_tasks.lightcurve import TIMES

    task = get_task("lightcurve")
    theta = np.array([[0.02, 0.1, 0.15, 0.0, 0.0]], np.float32)  # no limb darkening: depth = rp^2
    flux = task.simulate(theta, noise=False)[0]
    inside = np.abs(TIMES - 0.02) < 0.15 / 2 * 0.85
    outside = np.abs(TIMES - 0.02) > 0.15 / 2 * 1.15
    np.testing.assert_allclose(flux[inside], 1 - 0.01, atol=1e-5)
    np.testing.assert_allclose(flux[outside], 1.0, atol=1e-6)
    assert np.all(np.diff(TIMES) > 0) and len(np.unique(np.round(np.diff(TIMES), 4))) > 50  # irregular cadence


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_belongs_to_current_observations(name):
    task = get_task(name)
    theta_true, x_obs = task.true_parameters(), task.observations()
    # the file's own checksum, then the task's current code and seed must regenerate the observations
    assert task.reference_hash() == observation_hash(theta_true, x_obs)
    if "sbibm" in task.reference_info().get("source", ""):  # sbibm's observations: its seeds, not ours
        for i in range(len(x_obs)):  # each observation lies on what the current simulator makes from its truth
            x = task.simulate(np.repeat(theta_true[i:i + 1], 20_000, 0), seed=i)
            assert np.sqrt(((x - x_obs[i]) ** 2).sum(1)).min() < 1e-3, f"observation {i} changed"
        return
    theta_now, x_now = task.simulate_observations()
    np.testing.assert_array_equal(theta_now, theta_true)
    sigma = np.broadcast_to(getattr(task, "noise_sigma", 1.0), task.x_shape)
    assert np.max(np.abs(x_now - x_obs) / sigma) < 1e-3, "observations changed: rerun sbi/make_reference.py"


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_samples_and_diagnostics(name):
    task = get_task(name)
    ref = task.reference_samples()
    assert ref.shape[0] == 10 and ref.shape[1] >= 10_000 and ref.shape[2] == task.dim
    assert np.all(np.isfinite(ref))
    tol = 1e-3 * (task.high - task.low)  # float16 storage rounds by < 0.1 % of a posterior sd
    assert np.all(ref >= task.low - tol) and np.all(ref <= task.high + tol)
    # the reference's posterior predictive covers each observation (the scorer's check, on the reference itself)
    from astrobench.metrics.sbi import posterior_predictive

    assert min(posterior_predictive(task, ref, task.observations())) > 0.01
    info = task.reference_info()
    if "sbibm" in info.get("source", ""):  # published samples: provenance instead of sampler diagnostics
        assert info["licence"] == "MIT" and len(info["files_sha256"]) == 40 and len(info["sha256"]) == 64
        return
    assert len(info["per_observation"]) == 10
    assert all(r["max_rhat"] <= 1.01 for r in info["per_observation"]), json.dumps(info["per_observation"])
    assert all(r["min_ess_bulk"] > 400 for r in info["per_observation"])
    assert info["seconds_per_observation"] > 0
    # each truth is a plausible posterior draw: within 5 posterior sd on every parameter
    z = np.abs(task.true_parameters() - ref.mean(1)) / ref.std(1)
    assert np.all(z < 5), z


def test_two_moons_is_sbibm_s_simulator():
    task = get_task("two_moons")
    theta = np.array([[0.3, -0.2]], np.float32)
    x = task.simulate(np.repeat(theta, 5000, 0), seed=0)
    # x - the parameter shift is sbibm's crescent: radius 0.1 +- 0.01 around (0.25, 0), on its right half
    p = x - np.array([-abs(0.3 - 0.2), -0.3 - 0.2]) / np.sqrt(2)
    r = np.hypot(p[:, 0] - 0.25, p[:, 1])
    assert abs(r.mean() - 0.1) < 1e-3 and abs(r.std() - 0.01) < 1e-3 and np.all(p[:, 0] >= 0.25 - 1e-6)
    assert task.reference_info()["sbibm_observation_seeds"][0] == 1000011


def test_two_moons_file_matches_its_provenance_record():
    import hashlib
    import re

    task = get_task("two_moons")
    record = (task.reference_file.parent / "sbi_two_moons.md").read_text()
    digest = hashlib.sha256(task.reference_file.read_bytes()).hexdigest()
    assert re.search(r"sha256\*\* of `sbi_two_moons.npz`: `([0-9a-f]{64})`", record).group(1) == digest
    assert task.reference_info()["sha256"] in record and "MIT" in record


def test_a_task_without_likelihood_refuses_nuts_in_one_line():
    task = get_task("two_moons")
    for call in (lambda: task.log_likelihood(None, None), lambda: task.numpyro_model(None)):
        with pytest.raises(NoLikelihoodError, match="no tractable likelihood"):
            call()


def test_gaussian_task_requires_noise_sigma():
    class NoNoise(GaussianTask):
        name = "no-noise"

    with pytest.raises(TypeError, match="needs noise_sigma"):
        NoNoise()


def test_make_reference_refuses_in_one_line(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import make_reference

    wheel = tmp_path / "sbibm-1.1.0-py2.py3-none-any.whl"
    wheel.write_bytes(b"not sbibm")
    for argv, message in [(["--task", "two_moons"], "no tractable likelihood"),
                          (["--task", "two_moons", "--from-sbibm", str(wheel)], "expected sbibm 1.1.0's wheel"),
                          (["--task", "lightcurve", "--from-sbibm", str(wheel)], "expected one of: two_moons"),
                          (["--task", "nope"], "expected one of")]:
        assert make_reference.main([*argv, "--out-dir", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
