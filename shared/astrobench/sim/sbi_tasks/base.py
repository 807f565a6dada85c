"""What every SBI task shares: a prior, a batched simulator, 10 fixed observations, optional reference files.

Two kinds of task:

- ``BaseTask``: ANY simulator. A subclass sets ``name``, ``param_names``, ``labels``, ``low``, ``high`` (the box
  prior), ``x_shape`` and ``observation_seed``, and implements ``simulator(theta, seed)``: a batched function,
  (n, dim) float32 numpy in, (n, *x_shape) out, deterministic in ``seed`` (numpy, JAX, a compiled code: anything).
  It has no likelihood unless it defines one (``has_likelihood``): ``log_likelihood`` and NUTS refuse it in one line.
  Its observations are simulated from ``observation_seed``; reference posterior samples are optional
  (``has_reference``): without them the scorer uses SBC, TARP and posterior-predictive checks.
- ``GaussianTask``: x = mean(theta) + noise_sigma * N(0, 1), with ``mean`` for ONE parameter vector in jax.numpy
  and ``noise_sigma`` required (no default): the likelihood is an exact Gaussian, so NUTS can sample the reference
  posterior (``sbi/make_reference.py``), while NPE only ever sees simulations.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from importlib import resources

import numpy as np

NUM_OBSERVATIONS = 10
CHUNK = 4096  # simulations per jitted call: bounds memory (the image task holds 64x33 complex FFTs)


class NoLikelihoodError(NotImplementedError):
    """A task without a tractable likelihood was asked for one (NUTS, log_likelihood)."""


class BaseTask:
    name: str
    param_names: tuple
    labels: tuple
    low: np.ndarray
    high: np.ndarray
    x_shape: tuple
    observation_seed: int  # seeds the 10 fixed observations (true parameters + simulator noise)
    description: str = ""
    config: dict = {}  # noqa: RUF012 (read-only): the simulator's settings, recorded in metrics.json
    has_likelihood = False
    x_kind: str | None = None  # "image", "sequence" or "vector"; None: from x_shape (sbi/npe.py picks the embedding)

    # ------------------------------------------------------------------ model
    def simulator(self, theta: np.ndarray, seed: int) -> np.ndarray:
        """Batched simulator: theta (n, dim) float32 -> x (n, *x_shape), the same x for the same seed."""
        raise NotImplementedError(f"{type(self).__name__}.simulator: expected a batched function "
                                  "(theta (n, dim), seed) -> x (n, *x_shape)")

    def log_likelihood(self, theta, x):
        raise NoLikelihoodError(f"{self.name}: no tractable likelihood (a simulator-only task); expected a task "
                                "that defines log_likelihood (e.g. a GaussianTask) for NUTS references")

    def numpyro_model(self, x):
        self.log_likelihood(None, x)  # raises: NUTS needs the likelihood

    @property
    def dim(self) -> int:
        return len(self.param_names)

    # ------------------------------------------------------------------ sampling (numpy in, numpy out)
    def sample_prior(self, n: int, seed: int = 0) -> np.ndarray:
        """(n, dim) float32 draws from the box prior."""
        u = np.random.default_rng(seed).random((n, self.dim))
        return (self.low + u * (self.high - self.low)).astype(np.float32)

    def simulate(self, theta, seed: int = 0) -> np.ndarray:
        """Simulate x for a batch of parameters (n, dim) -> (n, *x_shape) float32, checked against ``x_shape``."""
        theta = np.asarray(theta, dtype=np.float32).reshape(-1, self.dim)
        if not len(theta):
            return np.zeros((0, *self.x_shape), np.float32)
        x = np.asarray(self.simulator(theta, seed), dtype=np.float32)
        if x.shape != (len(theta), *self.x_shape):
            raise ValueError(f"{self.name}: the simulator returned x of shape {x.shape}; expected "
                             f"{(len(theta), *self.x_shape)} (n, *x_shape)")
        return x

    def prior_torch(self, device: str = "cpu"):
        """The same box prior as an sbi ``BoxUniform`` (torch)."""
        import torch
        from sbi.utils import BoxUniform

        return BoxUniform(torch.as_tensor(self.low, dtype=torch.float32, device=device),
                          torch.as_tensor(self.high, dtype=torch.float32, device=device), device=device)

    # ------------------------------------------------------------------ fixed observations + references
    def simulate_observations(self):
        """(theta_true (10, dim), x_obs (10, *x_shape)) regenerated from the task's code and seed."""
        theta = self.sample_prior(NUM_OBSERVATIONS, seed=self.observation_seed)
        return theta, self.simulate(theta, seed=self.observation_seed)

    @property
    def reference_file(self):
        return resources.files("astrobench.data") / "reference" / f"sbi_{self.name}.npz"

    @property
    def has_reference(self) -> bool:
        return self.reference_file.is_file()

    @cached_property
    def _reference(self) -> dict:
        path = self.reference_file
        if not path.is_file():
            how = (f"run `python sbi/make_reference.py --task {self.name}`" if self.has_likelihood else
                   "a task without a likelihood is scored by SBC, TARP and posterior-predictive checks")
            raise FileNotFoundError(f"{path}: no reference posterior for {self.name!r}; {how}")
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    @cached_property
    def _observations(self):
        if self.has_reference:  # exactly those the reference was sampled for
            return self._reference["theta_true"], self._reference["x_obs"]
        return self.simulate_observations()

    def observations(self) -> np.ndarray:
        """The 10 fixed observations (10, *x_shape): the reference file's when there is one, else simulated."""
        return self._observations[1].copy()

    def true_parameters(self) -> np.ndarray:
        return self._observations[0].copy()

    def reference_samples(self, num: int | None = None) -> np.ndarray:
        """Reference posterior samples (10, num or all, dim) float32, decoded from the float16 file."""
        ref = self._reference
        z = ref["z"] if num is None else ref["z"][:, :num]
        return (ref["loc"][:, None, :] + ref["scale"][:, None, :] * z.astype(np.float64)).astype(np.float32)

    def reference_info(self) -> dict:
        """Sampler settings and diagnostics stored beside the samples (R-hat, ESS, wall time, provenance...)."""
        return json.loads(str(self._reference["info"]))

    def reference_hash(self) -> str:
        """sha256 of the observations: the reference file's record, else computed."""
        if self.has_reference:
            return str(self._reference["obs_sha256"])
        return observation_hash(*self._observations)

    def identity(self) -> dict:
        """The task's identity (``sbi/npe.py``'s task_meta: metrics.json, shipped models): the reference file's
        sha256 as version (else the observations'), the observations' seed and sha256, the simulator's settings."""
        config = dict(self.config, params=self.param_names, low=self.low, high=self.high, x_shape=self.x_shape)
        if hasattr(self, "noise_sigma"):
            config["noise_sigma"] = self.noise_sigma
        version = (hashlib.sha256(self.reference_file.read_bytes()).hexdigest() if self.has_reference
                   else self.reference_hash())
        return {"name": self.name, "version": version[:12], "seed": self.observation_seed,
                "sha256": self.reference_hash(), "fast": False, "config": config, "split": "observations"}


class GaussianTask(BaseTask):
    """x = mean(theta) + noise_sigma * N(0, 1): an exact Gaussian likelihood, NUTS references.

    A subclass implements ``mean(theta)`` (jax.numpy, one parameter vector) and sets ``noise_sigma`` (a scalar or an
    array broadcastable to ``x_shape``); simulation is jitted and vmapped in chunks."""

    has_likelihood = True
    noise_sigma: float | np.ndarray

    def __init__(self):
        if not hasattr(self, "noise_sigma"):
            raise TypeError(f"{type(self).__name__}: a GaussianTask needs noise_sigma (the likelihood's); "
                            "expected a scalar or an array broadcastable to x_shape")

    def mean(self, theta):
        """Noiseless simulator output for one parameter vector (jax.numpy)."""
        raise NotImplementedError

    @cached_property
    def _batched_mean(self):
        import jax

        return jax.jit(jax.vmap(self.mean))

    @cached_property
    def _batched_sim(self):
        import jax
        import jax.numpy as jnp

        sigma = jnp.asarray(self.noise_sigma, dtype=jnp.float32)

        def sim(key, theta):
            mu = jax.vmap(self.mean)(theta)
            return mu + sigma * jax.random.normal(key, mu.shape, dtype=mu.dtype)

        return jax.jit(sim)

    def _chunked(self, theta: np.ndarray, seed: int, noise: bool) -> np.ndarray:
        import jax
        import jax.numpy as jnp

        key = jax.random.PRNGKey(seed)
        size = min(CHUNK, 1 << max(0, len(theta) - 1).bit_length())  # powers of two: few compiled shapes
        out = []
        for i, start in enumerate(range(0, len(theta), size)):
            chunk = theta[start:start + size]
            pad = size - len(chunk)
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)]) if pad else chunk
            if noise:
                x = self._batched_sim(jax.random.fold_in(key, i), jnp.asarray(chunk))
            else:
                x = self._batched_mean(jnp.asarray(chunk))
            out.append(np.asarray(x)[: size - pad])
        return np.concatenate(out)

    def simulator(self, theta: np.ndarray, seed: int) -> np.ndarray:
        return self._chunked(theta, seed, noise=True)

    def simulate(self, theta, seed: int = 0, noise: bool = True) -> np.ndarray:
        """As ``BaseTask.simulate``; ``noise=False`` gives mean(theta)."""
        if noise:
            return super().simulate(theta, seed)
        theta = np.asarray(theta, dtype=np.float32).reshape(-1, self.dim)
        return self._chunked(theta, seed, noise=False) if len(theta) else np.zeros((0, *self.x_shape), np.float32)

    def log_likelihood(self, theta, x):
        """Exact Gaussian log-likelihood log p(x | theta) for one theta (jax.numpy)."""
        import jax.numpy as jnp

        sigma = jnp.broadcast_to(jnp.asarray(self.noise_sigma, dtype=jnp.float32), self.x_shape)
        r = (x - self.mean(theta)) / sigma
        return -0.5 * jnp.sum(r * r) - jnp.sum(jnp.log(sigma)) - 0.5 * r.size * jnp.log(2 * jnp.pi)

    def numpyro_model(self, x):
        """Prior x likelihood for NUTS: the reference posterior's definition."""
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        f = jnp.result_type(float)  # float64 when the caller enabled x64 (make_reference.py does)
        theta = numpyro.sample("theta", dist.Uniform(jnp.asarray(self.low, f), jnp.asarray(self.high, f)).to_event(1))
        sigma = jnp.broadcast_to(jnp.asarray(self.noise_sigma, dtype=jnp.float32), self.x_shape)
        numpyro.sample("x", dist.Normal(self.mean(theta), sigma).to_event(len(self.x_shape)), obs=x)


def observation_hash(theta_true, x_obs) -> str:
    """sha256 of the float32 bytes of the true parameters and observations."""
    h = hashlib.sha256()
    for a in (theta_true, x_obs):
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()
