"""Throughput of the galaxy renderer on whatever device is present (CPU here; GPU when JAX sees one).

    python benchmarks/bench_simulators.py [--n 4096] [--json OUT]

Reports 3-band 64x64 galaxy images per second for
  * the numpy renderer (adaptive FFT boxes, scipy FFT on all cores), used to build the datasets;
  * the same renderer traced by JAX (jit + one fixed box), which runs unchanged on a GPU: JAX places
    arrays on its default device, so no code changes between a laptop and a GPU node;
and, for the SBI track's JAX simulators (jit + vmap, ``task.simulate``), simulations per second of each task
(``--sbi-sims`` per task, after one warm-up call of the same size).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096, help="galaxies per measurement")
    ap.add_argument("--batch", type=int, default=256, help="galaxies per call")
    ap.add_argument("--sbi-sims", type=int, default=10_000, help="simulations per SBI task")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp
    from astrobench.sim import galaxies, render

    truth = galaxies.draw_population(args.n, seed=7)
    params = galaxies.render_params(truth)
    batches = [{k: v[i : i + args.batch] for k, v in params.items()} for i in range(0, args.n, args.batch)]
    out = {"n": args.n, "batch": args.batch, "cpu_cores": os.cpu_count(), "load_avg": os.getloadavg(),
           "jax_backend": jax.default_backend(), "jax_devices": [str(d) for d in jax.devices()]}

    render.render(batches[0])  # warm caches
    t0 = time.perf_counter()
    for b in batches:
        render.render(b)
    out["numpy_images_per_s"] = round(args.n / (time.perf_counter() - t0), 1)

    fn = jax.jit(partial(render.render, xp=jnp, pad=render.PAD))
    full = [b for b in batches if len(b["g1"]) == args.batch]  # one shape: one compilation
    as_jax = [{k: jnp.asarray(v, dtype=jnp.float32) for k, v in b.items()} for b in full]
    fn(as_jax[0]).block_until_ready()  # compile once
    t0 = time.perf_counter()
    for b in as_jax:
        fn(b).block_until_ready()
    out["jax_images_per_s"] = round(len(as_jax) * args.batch / (time.perf_counter() - t0), 1)
    ref = render.render(batches[0], pad=render.PAD)
    out["jax_vs_numpy_max_diff_over_peak"] = float(
        np.max(np.abs(np.asarray(fn(as_jax[0])) - ref)) / ref.max())

    from astrobench.sim.sbi_tasks import get_task, names

    for name in names():
        task = get_task(name)
        theta = task.sample_prior(args.sbi_sims, seed=0)
        task.simulate(theta, seed=1)  # compile every chunk shape once
        t0 = time.perf_counter()
        task.simulate(theta, seed=2)
        out[f"sbi_{name}_sims_per_s"] = round(args.sbi_sims / (time.perf_counter() - t0), 1)
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
