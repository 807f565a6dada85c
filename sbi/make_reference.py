"""Make the reference posteriors of an SBI task ONCE, with NUTS (numpyro), and write them as package data.

    python sbi/make_reference.py --task lightcurve        # writes shared/astrobench/data/reference/sbi_lightcurve.npz
    pip download sbibm==1.1.0 --no-deps -d /tmp/sbibm     # sbibm's published two_moons references (MIT)
    python sbi/make_reference.py --task two_moons --from-sbibm /tmp/sbibm/sbibm-1.1.0-py2.py3-none-any.whl

Like sbibm, the kit ships these samples: a fresh machine or CI never reruns NUTS. For each of
the 10 fixed observations we run NUM_CHAINS NUTS chains vectorised in one jitted program
(dense mass matrix, the likelihood is the simulator's exact Gaussian), check convergence
(split R-hat <= 1.01 on every parameter, bulk ESS reported), and double the run length if a check
fails. Samples are stored as float16 z-scores with float64 location/scale per observation (the
rounding is < 0.1 % of a posterior standard deviation), beside the observations, their sha256 and
the sampler's settings and diagnostics. Paste the printed table into the task's card.

``--from-sbibm WHEEL`` converts sbibm's published observations, true parameters and 10 000 reference samples per
observation of a task sbibm defines (two_moons) into the same file format, read from the wheel's package data
(sbibm itself is not imported or installed), with the wheel's and every file's sha256 and sbibm's MIT licence
recorded in ``info``. A task without a likelihood and without sbibm files has no reference: it is scored by SBC,
TARP and posterior-predictive checks.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import io
import json
import os
import platform
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "shared" / "astrobench" / "data" / "reference"
# Many short vectorised chains: on a CPU a NUTS step of 20 chains costs about what one chain costs
# (the per-step overhead dominates these small models), so 20 x 500 draws are ~4x cheaper than 4 x 2500.
NUM_CHAINS = 20
NUM_WARMUP = 300
NUM_SAMPLES = 500  # per chain: 20 x 500 = 10 000 reference samples per observation
TARGET_ACCEPT = 0.9
MAX_TREE_DEPTH = 10
RHAT_MAX = 1.01
MAX_DOUBLINGS = 2
SIR_PROPOSALS = 20_000
# sbibm 1.1.0 from PyPI (`pip download sbibm==1.1.0 --no-deps`): the wheel whose package data was converted
SBIBM = {"version": "1.1.0", "wheel": "sbibm-1.1.0-py2.py3-none-any.whl",
         "sha256": "12ecc6b4d327b92f9225f08faa6405e4274fb8e75943d86a53157d1b1bcfaf74",
         "url": "https://pypi.org/project/sbibm/1.1.0/", "repository": "https://github.com/sbi-benchmark/sbibm",
         "licence": "MIT", "copyright": "Copyright 2020 Jan-Matthis Lueckmann, Jan Boelts, David S. Greenberg, "
         "Pedro J. Goncalves, Jakob H. Macke", "citation": "Lueckmann et al. 2021, Benchmarking Simulation-Based "
         "Inference, AISTATS, arXiv:2101.04653"}
SBIBM_TASKS = {"two_moons": "two_moons"}  # kit task -> sbibm task folder


def sir_init(task, x_obs, num_chains: int, seed: int, num_proposals: int = SIR_PROPOSALS):
    """Chain starts by sampling-importance-resampling from the prior (as sbibm does), in unconstrained space.

    Starting uniformly over the box leaves chains stuck in local modes (e.g. a transit model aligned
    with a noise dip), which shows up as R-hat >> 1.01; SIR puts every chain in the dominant mode.
    """
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.distributions.transforms import biject_to

    theta = task.sample_prior(num_proposals, seed=seed + 1)
    loglik = jax.jit(jax.vmap(task.log_likelihood, in_axes=(0, None)))
    logw = np.concatenate([np.asarray(loglik(jnp.asarray(c), jnp.asarray(x_obs)))
                           for c in np.array_split(theta, max(1, num_proposals // 4096))]).astype(np.float64)
    w = np.exp(logw - logw.max())
    idx = np.random.default_rng(seed).choice(num_proposals, size=num_chains, replace=True, p=w / w.sum())
    f = jnp.result_type(float)  # float64 under enable_x64
    support = biject_to(dist.constraints.interval(jnp.asarray(task.low, f), jnp.asarray(task.high, f)))
    return support.inv(jnp.asarray(theta[idx], f))


@lru_cache(maxsize=4)
def _mcmc(task, num_warmup: int, num_samples: int, num_chains: int):
    """One compiled sampler per (task, run length): jit_model_args lets each observation reuse it."""
    from numpyro.infer import MCMC, NUTS, init_to_uniform

    kernel = NUTS(task.numpyro_model, dense_mass=True, target_accept_prob=TARGET_ACCEPT,
                  max_tree_depth=MAX_TREE_DEPTH, init_strategy=init_to_uniform)
    return MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="vectorized", progress_bar=False, jit_model_args=True)


def run_nuts(task, x_obs, seed: int, num_warmup: int = NUM_WARMUP, num_samples: int = NUM_SAMPLES,
             num_chains: int = NUM_CHAINS):
    """NUTS samples (num_chains, num_samples, dim) of p(theta | x_obs), wall seconds and sampler stats."""
    import jax

    mcmc = _mcmc(task, num_warmup, num_samples, num_chains)
    t0 = time.perf_counter()
    init = sir_init(task, x_obs, num_chains, seed)
    mcmc.run(jax.random.PRNGKey(seed), x_obs, extra_fields=("diverging", "num_steps"), init_params={"theta": init})
    samples = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"], dtype=np.float64)
    extra = mcmc.get_extra_fields()
    stats = {"divergences": int(np.sum(extra["diverging"])), "mean_leapfrog_steps": float(np.mean(extra["num_steps"]))}
    return samples, time.perf_counter() - t0, stats


def diagnostics(samples):
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    return split_gelman_rubin(samples), effective_sample_size(samples)


def make(task_name: str, seed: int = 0, num_samples: int = NUM_SAMPLES, out_dir: Path = OUT_DIR) -> Path:
    from astrobench.sim.sbi_tasks import get_task
    from astrobench.sim.sbi_tasks.base import observation_hash

    task = get_task(task_name)
    theta_true, x_obs = task.simulate_observations()
    z, loc, scale, rows = [], [], [], []
    for i in range(len(x_obs)):
        n, warm = num_samples, NUM_WARMUP
        for attempt in range(MAX_DOUBLINGS + 1):
            s, seconds, stats = run_nuts(task, x_obs[i], seed=seed * 1000 + i * 10 + attempt,
                                         num_warmup=warm, num_samples=n)
            rhat, ess = diagnostics(s)
            if np.max(rhat) <= RHAT_MAX:
                break
            print(f"obs {i}: max R-hat {np.max(rhat):.4f} > {RHAT_MAX}; rerunning twice as long", flush=True)
            n, warm = 2 * n, 2 * warm
        flat = s.reshape(-1, task.dim)
        # keep exactly NUM_CHAINS * num_samples draws, thinned evenly across every chain when the run was longer
        keep = s[:, :: max(1, s.shape[1] // num_samples)][:, :num_samples].reshape(-1, task.dim)
        m, sd = flat.mean(0), flat.std(0)
        z.append(((keep - m) / sd).astype(np.float16))
        loc.append(m)
        scale.append(sd)
        rows.append({"obs": i, "seconds": round(seconds, 2), "warmup": warm, "samples_per_chain": n,
                     "max_rhat": round(float(np.max(rhat)), 4), "min_ess_bulk": round(float(np.min(ess)), 1),
                     **stats})
        print(json.dumps(rows[-1]), flush=True)
    import jax
    import numpyro

    info = {
        "task": task.name, "sampler": "numpyro NUTS", "numpyro": numpyro.__version__, "jax": jax.__version__,
        "num_chains": NUM_CHAINS, "chain_method": "vectorized", "num_warmup": NUM_WARMUP,
        "num_samples_per_chain": num_samples, "dense_mass": True, "target_accept_prob": TARGET_ACCEPT,
        "max_tree_depth": MAX_TREE_DEPTH, "init": f"SIR from {SIR_PROPOSALS} prior draws", "seed": seed,
        "rhat_max": RHAT_MAX, "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared)",
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "total_seconds": round(sum(r["seconds"] for r in rows), 1),
        "seconds_per_observation": round(sum(r["seconds"] for r in rows) / len(rows), 2), "per_observation": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"sbi_{task.name}.npz"
    np.savez_compressed(path, z=np.stack(z), loc=np.stack(loc), scale=np.stack(scale),
                        theta_true=theta_true.astype(np.float32), x_obs=x_obs.astype(np.float32),
                        obs_sha256=np.array(observation_hash(theta_true, x_obs)), info=np.array(json.dumps(info)))
    print(f"{task.name}: {len(rows)} observations, {info['total_seconds']} s of NUTS -> {path} "
          f"({path.stat().st_size / 1e6:.2f} MB)")
    return path


def from_sbibm(task_name: str, wheel: Path, out_dir: Path = OUT_DIR) -> Path:
    """sbibm's 10 observations, true parameters and reference samples of ``task_name`` from its wheel, in the kit's
    reference format; ValueError (one line) for another wheel or a task sbibm does not have."""
    import zipfile

    from astrobench.sim.sbi_tasks import get_task
    from astrobench.sim.sbi_tasks.base import NUM_OBSERVATIONS, observation_hash

    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    if digest != SBIBM["sha256"]:
        raise ValueError(f"{wheel}: sha256 {digest[:12]}...; expected sbibm {SBIBM['version']}'s wheel "
                         f"({SBIBM['sha256'][:12]}...: pip download sbibm=={SBIBM['version']} --no-deps)")
    task = get_task(task_name)
    folder = f"sbibm/tasks/{SBIBM_TASKS[task_name]}/files"
    files, theta, x, z, loc, scale, seeds = {}, [], [], [], [], [], []
    with zipfile.ZipFile(wheel) as zf:
        def read(name):
            data = zf.read(f"{folder}/{name}")
            files[name] = hashlib.sha256(data).hexdigest()
            text = bz2.decompress(data) if name.endswith(".bz2") else data
            return np.loadtxt(io.BytesIO(text), delimiter=",", skiprows=1, ndmin=2)

        for i in range(1, NUM_OBSERVATIONS + 1):
            theta.append(read(f"num_observation_{i}/true_parameters.csv")[0])
            x.append(read(f"num_observation_{i}/observation.csv")[0])
            seeds.append(int(read(f"num_observation_{i}/observation_seed.csv")[0, 0]))
            s = read(f"num_observation_{i}/reference_posterior_samples.csv.bz2")
            m, sd = s.mean(0), s.std(0)
            z.append(((s - m) / sd).astype(np.float16))
            loc.append(m)
            scale.append(sd)
    theta_true, x_obs = np.asarray(theta, np.float32), np.asarray(x, np.float32).reshape(-1, *task.x_shape)
    info = {"task": task.name, "source": f"sbibm {SBIBM['version']} package data ({folder})", **SBIBM,
            "sbibm_observation_seeds": seeds, "num_samples_per_observation": int(np.stack(z).shape[1]),
            "storage": "float16 z-scores with float64 location/scale per observation", "files_sha256": files}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"sbi_{task.name}.npz"
    np.savez_compressed(path, z=np.stack(z), loc=np.stack(loc), scale=np.stack(scale), theta_true=theta_true,
                        x_obs=x_obs, obs_sha256=np.array(observation_hash(theta_true, x_obs)),
                        info=np.array(json.dumps(info)))
    print(f"{task.name}: {len(z)} observations x {info['num_samples_per_observation']} sbibm reference samples "
          f"-> {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", required=True, help="galaxy-profile or lightcurve")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-samples", type=int, default=NUM_SAMPLES, help="per chain (4 chains)")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--from-sbibm", type=Path, metavar="WHEEL", help="convert sbibm's published references from its "
                   f"wheel (tasks: {', '.join(SBIBM_TASKS)}) instead of running NUTS")
    args = p.parse_args(argv)
    from astrobench.sim.sbi_tasks import get_task, names

    def fail(msg):
        print(f"make_reference.py: error: {msg}", file=sys.stderr)
        return 2

    if args.task not in names():
        return fail(f"--task {args.task!r}; expected one of: {', '.join(names())}")
    if args.from_sbibm is not None:
        if args.task not in SBIBM_TASKS:
            return fail(f"--from-sbibm with --task {args.task}; expected one of: {', '.join(SBIBM_TASKS)}")
        if not args.from_sbibm.is_file():
            return fail(f"--from-sbibm {args.from_sbibm}: no such file; expected sbibm's wheel "
                        f"(pip download sbibm=={SBIBM['version']} --no-deps)")
        try:
            from_sbibm(args.task, args.from_sbibm, out_dir=args.out_dir)
        except (ValueError, KeyError, OSError) as err:
            return fail(str(err).strip("'\""))
        return 0
    if not get_task(args.task).has_likelihood:
        how = " (its references: --from-sbibm WHEEL)" if args.task in SBIBM_TASKS else ""
        return fail(f"--task {args.task} has no tractable likelihood, so NUTS cannot sample it{how}; expected a "
                    "task with a likelihood (a GaussianTask)")
    import numpyro

    # float64 gradients: in float32 the transit's contact-point geometry made NUTS shrink its step 3x
    numpyro.enable_x64()
    make(args.task, seed=args.seed, num_samples=args.num_samples, out_dir=args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
