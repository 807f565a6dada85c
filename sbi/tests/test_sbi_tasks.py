"""SBI tasks: priors, JAX simulators, likelihoods and the committed reference posteriors."""

import json

import numpy as np
import pytest
from astrobench.sim.sbi_tasks import get_task, names
from astrobench.sim.sbi_tasks.base import observation_hash

TASKS = names()


def test_task_names():
    assert set(TASKS) == {"galaxy-profile", "lightcurve"}
    with pytest.raises(ValueError, match="expected one of"):
        get_task("two-moons")


@pytest.mark.parametrize("name", TASKS)
def test_prior_and_simulator(name):
    task = get_task(name)
    assert 4 <= task.dim <= 6 and len(task.labels) == task.dim
    theta = task.sample_prior(300, seed=1)
    assert theta.shape == (300, task.dim) and theta.dtype == np.float32
    assert np.all(theta >= task.low) and np.all(theta <= task.high)
    x = task.simulate(theta, seed=2)
    assert x.shape == (300, *task.x_shape) and x.dtype == np.float32 and np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, task.simulate(theta, seed=2))  # deterministic from the seed
    assert not np.array_equal(x, task.simulate(theta, seed=3))
    # the noise is exactly the likelihood's: standardised residuals are N(0, 1)
    r = (x - task.simulate(theta, noise=False)) / np.broadcast_to(task.noise_sigma, task.x_shape)
    assert abs(r.mean()) < 0.02 and abs(r.std() - 1) < 0.02


@pytest.mark.parametrize("name", TASKS)
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


@pytest.mark.parametrize("name", TASKS)
def test_reference_belongs_to_current_observations(name):
    task = get_task(name)
    theta_true, x_obs = task.true_parameters(), task.observations()
    # the file's own checksum, then the task's current code and seed must regenerate the observations
    assert task.reference_hash() == observation_hash(theta_true, x_obs)
    theta_now, x_now = task.simulate_observations()
    np.testing.assert_array_equal(theta_now, theta_true)
    sigma = np.broadcast_to(task.noise_sigma, task.x_shape)
    assert np.max(np.abs(x_now - x_obs) / sigma) < 1e-3, "observations changed: rerun sbi/make_reference.py"


@pytest.mark.parametrize("name", TASKS)
def test_reference_samples_and_diagnostics(name):
    task = get_task(name)
    ref = task.reference_samples()
    assert ref.shape[0] == 10 and ref.shape[1] >= 10_000 and ref.shape[2] == task.dim
    assert np.all(np.isfinite(ref))
    tol = 1e-3 * (task.high - task.low)  # float16 storage rounds by < 0.1 % of a posterior sd
    assert np.all(ref >= task.low - tol) and np.all(ref <= task.high + tol)
    info = task.reference_info()
    assert len(info["per_observation"]) == 10
    assert all(r["max_rhat"] <= 1.01 for r in info["per_observation"]), json.dumps(info["per_observation"])
    assert all(r["min_ess_bulk"] > 400 for r in info["per_observation"])
    assert info["seconds_per_observation"] > 0
    # each truth is a plausible posterior draw: within 5 posterior sd on every parameter
    z = np.abs(task.true_parameters() - ref.mean(1)) / ref.std(1)
    assert np.all(z < 5), z
