"""``two_moons``: sbibm's two-moons task (Greenberg+2019; Lueckmann+2021, sbibm), a simulator-defined benchmark.

The worked example of CONTRIBUTING.md "Add an SBI task": a plain numpy simulator (no JAX, no Gaussian noise), its
observations and reference posteriors taken from sbibm's published files, no likelihood in the kit. As sbibm
defines it, with theta ~ U(-1, 1)^2:

    a ~ U(-pi/2, pi/2),  r ~ N(0.1, 0.01^2),  p = (r cos a + 0.25, r sin a)
    x = p + (-|theta_1 + theta_2| / sqrt 2, (-theta_1 + theta_2) / sqrt 2)

so each x has a crescent-shaped, bimodal posterior. The 10 observations, true parameters and 10 000 reference
samples per observation are sbibm's (MIT licence, Lueckmann et al.), converted by
``python sbi/make_reference.py --task two_moons --from-sbibm WHEEL`` into ``sbi_two_moons.npz``; the file records
their source, licence and the sha256 of every original file (``task.reference_info()``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import BaseTask

R_MEAN, R_SD = 0.1, 0.01
OFFSET = 0.25


class Task(BaseTask):
    name = "two_moons"
    description = "sbibm's two moons: 2 parameters, 2-D data, a crescent-shaped bimodal posterior"
    param_names = ("theta_1", "theta_2")
    labels = (r"$\theta_1$", r"$\theta_2$")
    low = np.array([-1.0, -1.0], dtype=np.float32)
    high = np.array([1.0, 1.0], dtype=np.float32)
    x_shape = (2,)
    observation_seed = 20253  # only without the reference file; with it, the observations are sbibm's
    config: ClassVar[dict] = dict(source="sbibm two_moons (Lueckmann+2021)", r_mean=R_MEAN, r_sd=R_SD,
                                  offset=OFFSET, angle="U(-pi/2, pi/2)")

    def simulator(self, theta: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        n = len(theta)
        a = rng.uniform(-np.pi / 2, np.pi / 2, n)
        r = rng.normal(R_MEAN, R_SD, n)
        p = np.stack([r * np.cos(a) + OFFSET, r * np.sin(a)], axis=1)
        t = theta.astype(np.float64)
        shift = np.stack([-np.abs(t[:, 0] + t[:, 1]), -t[:, 0] + t[:, 1]], axis=1) / np.sqrt(2.0)
        return p + shift
