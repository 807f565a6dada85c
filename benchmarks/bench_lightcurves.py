"""Benchmark the `lightcurves` dataset and the reference period finders (figures quoted in its card).

    python benchmarks/bench_lightcurves.py [--per-class 200] [--json benchmarks/lightcurves.json]

1. Generation from an empty temporary cache, FAST and full, each in a fresh process (so no geometry is cached
   from an earlier run): wall time of ``load`` (both splits are made), a cached reload, the peak RSS.
2. Sampling: 24-hour duty cycle and the spectral window at 1 c/d, one site (Cerro Tololo) vs the network.
3. Period recovery per class and S/N bin with the reference methods of ``astrobench.metrics.periods``
   (Lomb-Scargle for pulsators, BLS for transits and eclipsing binaries; each site and band divided by its median
   first, except for LPVs, whose cycles one site sees only in part) on ``--per-class`` curves of each periodic
   class, for the three-site network and for Cerro Tololo alone (the same curves with the other sites' visits
   masked). S/N bins use each curve's network S/N (truth ``snr``), so both rows hold the same objects.
Run it on a quiet machine: it is a timing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

GEN = """
import json, os, resource, sys, tempfile, time
with tempfile.TemporaryDirectory() as tmp:
    os.environ["ASTROBENCH_DATA"] = tmp
    from astrobench import data
    t0 = time.perf_counter()
    train = data.load("lightcurves", "train", fast={fast}, progress=False)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = data.load("lightcurves", "test", fast={fast}, progress=False)
    _ = float(again.flux[-1].sum())
    reload = time.perf_counter() - t0
    print(json.dumps({{"generate_s": round(made, 1), "reload_s": round(reload, 3), "sizes": train.meta["sizes"],
                      "t_max": train.time.shape[1], "sha256": train.meta["sha256"][:16],
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}))
"""
PERIODIC = {"rr_lyrae_ab": "ls", "rr_lyrae_c": "ls", "cepheid": "ls", "delta_scuti": "ls", "lpv": "ls",
            "transit": "bls", "eclipsing_binary": "bls"}
SNR_BINS = (0, 10, 30, 100, np.inf)


def generation(fast: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    out = subprocess.run([sys.executable, "-c", GEN.format(fast=fast)], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def recovery(per_class: int, seed: int = 1) -> dict:
    from astrobench.metrics import periods as pm
    from astrobench.sim import lightcurves as lc

    split = lc.make_split(per_class * len(PERIODIC), 0.0, seed, block=9,
                          fractions={c: 1.0 for c in PERIODIC})
    truth = split["truth"]
    rows = {}
    for cls, method in PERIODIC.items():
        idx = np.flatnonzero(truth["class"] == cls)
        kw = {"method": method, "oversample": 3} if method == "ls" else {"method": method, "max_period": 20.0}
        kw["min_period"] = 0.03 if method == "ls" else 0.3
        per_site = cls != "lpv"  # remove per-site zero points (a daily signal for a network) except for LPVs
        for config, sites in (("network", (0, 1, 2)), ("one_site", (0,))):
            t0 = time.perf_counter()
            found = np.array([pm.find_period(split["time"][i], split["flux"][i], split["flux_err"][i],
                                             split["band"][i], split["mask"][i] & np.isin(split["site"][i], sites),
                                             site=split["site"][i] if per_site else None, **kw)[0]
                              for i in idx])
            labels = pm.classify(truth["period"][idx], found)
            snr = truth["snr"][idx]
            rows[f"{cls}/{config}"] = {
                "method": method, "seconds_per_curve": round((time.perf_counter() - t0) / idx.size, 3),
                **pm.report(truth["period"][idx], found),
                "by_snr": {f"{lo:g}-{hi:g}": [int(((snr >= lo) & (snr < hi)).sum()),
                                                round(float((labels[(snr >= lo) & (snr < hi)] == "recovered").mean()),
                                                      3) if ((snr >= lo) & (snr < hi)).any() else None]
                           for lo, hi in itertools.pairwise(SNR_BINS)}}
            print(cls, config, json.dumps(rows[f"{cls}/{config}"]), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=200, help="curves per periodic class for period recovery")
    ap.add_argument("--skip-generation", action="store_true")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    result = {"cpu_cores": os.cpu_count(), "python": platform.python_version(),
              "load_avg_start": [round(v, 2) for v in os.getloadavg()]}
    if not args.skip_generation:
        result["fast"] = generation(True)
        print("fast", result["fast"], flush=True)
        result["full"] = generation(False)
        print("full", result["full"], flush=True)
    from astrobench.sim import lightcurves as lc

    result["sampling"] = {"one_site": lc.coverage(sites=(0,)), "network": lc.coverage()}
    print("sampling", result["sampling"], flush=True)
    result["recovery"] = recovery(args.per_class)
    result["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps({k: v for k, v in result.items() if k != "recovery"}, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
