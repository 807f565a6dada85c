"""Benchmark the `galaxies` generator (figures quoted in its card).

    python benchmarks/bench_scenes.py [--json benchmarks/scenes.json]

Measures, from an empty temporary cache: the wall time to generate the full default set (20 000 train +
2 000 test scenes, 3 bands, 64 x 64, segmentation and spectra), a cached reload, and the peak RSS. Run it only
on a quiet machine (load average under 1.5): it is a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    result = {"cpu_cores": os.cpu_count(), "python": platform.python_version(),
              "load_avg_start": [round(v, 2) for v in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASTROBENCH_DATA"] = tmp
        from astrobench import data

        t0 = time.perf_counter()
        train = data.load("galaxies", "train", fast=False)
        result["full_generate_s"] = round(time.perf_counter() - t0, 1)
        result["full_sizes"] = train.meta["sizes"]
        t0 = time.perf_counter()
        again = data.load("galaxies", "train", fast=False)
        _ = float(again.images[-1].sum())  # touch the memory map
        result["cached_reload_s"] = round(time.perf_counter() - t0, 3)
        result["sha256"] = again.meta["sha256"]
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
