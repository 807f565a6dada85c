"""``lightcurve``: an exoplanet transit observed by a network of small telescopes.

Physical story: four sites follow up a predicted transit over one 0.8-day window. Each site has
its own cadence, night window, weather dropouts and photometric noise, so the merged light
curve has irregular time stamps and heteroscedastic (known) errors. The model is a circular-orbit
transit: the planet-star separation is z(t) = sqrt(b^2 + (2 sqrt(1 - b^2) (t - t0) / T)^2)
(in stellar radii; T is the time the planet's centre spends inside the stellar disk), the blocked
light is the exact uniform-disk overlap area (Mandel & Agol 2002, lambda^e) weighted by a
linear limb-darkening law at the planet's position (the small-planet approximation; during
ingress and egress, at the middle of the covered limb annulus). Five
parameters:

    t0      mid-transit time [days]                 U(-0.1, 0.1)
    rp      planet-to-star radius ratio             U(0.05, 0.15)  (depth 0.25 .. 2.3 %)
    T       transit duration [days]                 U(0.06, 0.20)
    b       impact parameter                        U(0, 0.9)
    u       linear limb-darkening coefficient       U(0.1, 0.7)

Time stamps and per-point errors are fixed (seeded), so every simulation is a vector of the
same 160 fluxes; NPE sees fluxes only, like a participant's pipeline would.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from .base import GaussianTask

NUM_POINTS = 160
CADENCE_SEED = 7
# (night window start, end [days], photometric sigma, share of the exposures) per site
SITES = ((-0.40, 0.05, 1.2e-3, 0.30), (-0.25, 0.25, 2.0e-3, 0.25), (-0.05, 0.40, 1.5e-3, 0.30),
         (-0.40, 0.40, 3.0e-3, 0.15))


def cadence(num: int = NUM_POINTS, seed: int = CADENCE_SEED):
    """Irregular time stamps (sorted) and per-point sigma of the merged four-site light curve."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(num, [s[3] for s in SITES])
    t, sig = [], []
    for (lo, hi, sigma, _), n in zip(SITES, counts):
        # random exposure times inside the night window; exposures cluster and leave gaps
        t.append(rng.uniform(lo, hi, n))
        sig.append(np.full(n, sigma))
    t, sig = np.concatenate(t), np.concatenate(sig)
    order = np.argsort(t)
    return t[order].astype(np.float32), sig[order].astype(np.float32)


TIMES, SIGMA = cadence()


def overlap(p, z):
    """Fraction of the stellar disk's area covered by a disk of radius p at separation z (p < 1)."""
    eps = 1e-6
    z = jnp.maximum(z, eps)
    k0 = jnp.arccos(jnp.clip((p * p + z * z - 1.0) / (2.0 * p * z), -1.0 + eps, 1.0 - eps))
    k1 = jnp.arccos(jnp.clip((1.0 - p * p + z * z) / (2.0 * z), -1.0 + eps, 1.0 - eps))
    s = jnp.sqrt(jnp.maximum(4.0 * z * z - (1.0 + z * z - p * p) ** 2, eps))
    partial = (p * p * k0 + k1 - 0.5 * s) / jnp.pi
    return jnp.where(z >= 1.0 + p, 0.0, jnp.where(z <= 1.0 - p, p * p, partial))


class Task(GaussianTask):
    name = "lightcurve"
    description = "exoplanet transit (t0, rp, T, b, limb darkening) from an irregular multi-site light curve"
    param_names = ("t0", "rp", "T", "b", "u")
    labels = (r"$t_0$ [d]", r"$R_p/R_\star$", r"$T$ [d]", r"$b$", r"$u$")
    low = np.array([-0.1, 0.05, 0.06, 0.0, 0.1], dtype=np.float32)
    high = np.array([0.1, 0.15, 0.20, 0.9, 0.7], dtype=np.float32)
    x_shape = (NUM_POINTS,)
    noise_sigma = SIGMA
    observation_seed = 20252
    times = TIMES
    config: ClassVar[dict] = dict(num_points=NUM_POINTS, cadence_seed=CADENCE_SEED, sites=[list(s) for s in SITES],
                                  limb_darkening="linear, small-planet approximation", orbit="circular, linear chord")

    def mean(self, theta):
        t0, p, dur, b, u = theta[0], theta[1], theta[2], theta[3], theta[4]
        t = jnp.asarray(TIMES)
        z = jnp.sqrt(b * b + (2.0 * jnp.sqrt(1.0 - b * b) * (t - t0) / dur) ** 2)
        # intensity at the planet's centre; during ingress/egress at the middle of the covered limb
        # annulus (r <= 1 - p/2), which also keeps the gradient finite where mu -> 0 at the limb
        r = jnp.minimum(z, 1.0 - 0.5 * p)
        mu = jnp.sqrt(1.0 - r * r)
        intensity = (1.0 - u * (1.0 - mu)) / (1.0 - u / 3.0)  # normalised by the disk-mean intensity
        return 1.0 - overlap(p, z) * intensity
