"""What every SBI task shares: box prior, batched JAX simulation, numpyro model, reference files.

A task subclass sets ``name``, ``param_names``, ``labels``, ``low``, ``high``, ``x_shape``,
``noise_sigma`` (scalar or an array broadcastable to ``x_shape``) and implements
``mean(theta)``: the noiseless simulator output for ONE parameter vector, in jax.numpy. Everything
else follows: x = mean(theta) + noise_sigma * N(0, 1), so the likelihood is an exact Gaussian and
NUTS can sample the posterior (the reference), while NPE only ever sees simulations.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np

NUM_OBSERVATIONS = 10
CHUNK = 4096  # simulations per jitted call: bounds memory (the image task holds 64x33 complex FFTs)


class BaseTask:
    name: str
    param_names: tuple
    labels: tuple
    low: np.ndarray
    high: np.ndarray
    x_shape: tuple
    noise_sigma = 1.0
    observation_seed: int  # seeds the 10 fixed observations (true parameters + noise)
    description: str = ""

    # ------------------------------------------------------------------ model
    def mean(self, theta):
        """Noiseless simulator output for one parameter vector (jax.numpy)."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        return len(self.param_names)

    @cached_property
    def _batched_mean(self):
        return jax.jit(jax.vmap(self.mean))

    @cached_property
    def _batched_sim(self):
        sigma = jnp.asarray(self.noise_sigma, dtype=jnp.float32)

        def sim(key, theta):
            mu = jax.vmap(self.mean)(theta)
            return mu + sigma * jax.random.normal(key, mu.shape, dtype=mu.dtype)

        return jax.jit(sim)

    def log_likelihood(self, theta, x):
        """Exact Gaussian log-likelihood log p(x | theta) for one theta (jax.numpy)."""
        sigma = jnp.broadcast_to(jnp.asarray(self.noise_sigma, dtype=jnp.float32), self.x_shape)
        r = (x - self.mean(theta)) / sigma
        return -0.5 * jnp.sum(r * r) - jnp.sum(jnp.log(sigma)) - 0.5 * r.size * jnp.log(2 * jnp.pi)

    # ------------------------------------------------------------------ sampling (numpy in, numpy out)
    def sample_prior(self, n: int, seed: int = 0) -> np.ndarray:
        """(n, dim) float32 draws from the box prior."""
        u = np.random.default_rng(seed).random((n, self.dim))
        return (self.low + u * (self.high - self.low)).astype(np.float32)

    def simulate(self, theta, seed: int = 0, noise: bool = True) -> np.ndarray:
        """Simulate x for a batch of parameters (n, dim) -> (n, *x_shape) float32, jitted in chunks."""
        theta = np.asarray(theta, dtype=np.float32).reshape(-1, self.dim)
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
        return np.concatenate(out) if out else np.zeros((0, *self.x_shape), np.float32)

    def prior_torch(self, device: str = "cpu"):
        """The same box prior as an sbi ``BoxUniform`` (torch)."""
        import torch
        from sbi.utils import BoxUniform

        return BoxUniform(torch.as_tensor(self.low, dtype=torch.float32, device=device),
                          torch.as_tensor(self.high, dtype=torch.float32, device=device), device=device)

    def numpyro_model(self, x):
        """Prior x likelihood for NUTS: the reference posterior's definition."""
        import numpyro
        import numpyro.distributions as dist

        f = jnp.result_type(float)  # float64 when the caller enabled x64 (make_reference.py does)
        theta = numpyro.sample("theta", dist.Uniform(jnp.asarray(self.low, f), jnp.asarray(self.high, f)).to_event(1))
        sigma = jnp.broadcast_to(jnp.asarray(self.noise_sigma, dtype=jnp.float32), self.x_shape)
        numpyro.sample("x", dist.Normal(self.mean(theta), sigma).to_event(len(self.x_shape)), obs=x)

    # ------------------------------------------------------------------ fixed observations + references
    def simulate_observations(self):
        """(theta_true (10, dim), x_obs (10, *x_shape)) regenerated from the task's code and seed."""
        theta = self.sample_prior(NUM_OBSERVATIONS, seed=self.observation_seed)
        return theta, self.simulate(theta, seed=self.observation_seed)

    @property
    def reference_file(self):
        return resources.files("astrobench.data") / "reference" / f"sbi_{self.name}.npz"

    @cached_property
    def _reference(self) -> dict:
        path = self.reference_file
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no reference posterior for {self.name!r}; "
                                    f"run `python sbi/make_reference.py --task {self.name}`")
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def observations(self) -> np.ndarray:
        """The 10 fixed observations (10, *x_shape), exactly those the reference was sampled for."""
        return self._reference["x_obs"].copy()

    def true_parameters(self) -> np.ndarray:
        return self._reference["theta_true"].copy()

    def reference_samples(self, num: int | None = None) -> np.ndarray:
        """Reference posterior samples (10, num or all, dim) float32, decoded from the float16 file."""
        ref = self._reference
        z = ref["z"] if num is None else ref["z"][:, :num]
        return (ref["loc"][:, None, :] + ref["scale"][:, None, :] * z.astype(np.float64)).astype(np.float32)

    def reference_info(self) -> dict:
        """Sampler settings and diagnostics stored beside the samples (R-hat, ESS, wall time...)."""
        return json.loads(str(self._reference["info"]))

    def reference_hash(self) -> str:
        return str(self._reference["obs_sha256"])


def observation_hash(theta_true, x_obs) -> str:
    """sha256 of the float32 bytes of the true parameters and observations."""
    h = hashlib.sha256()
    for a in (theta_true, x_obs):
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()
