"""Reproducibility check with the full FAST budgets: each baseline twice, once with the clock sped up 40x.

    python benchmarks/check_reproducible.py [TRACK ...] [--threads N]   # -> benchmarks/reproducible.json

Each script runs in FAST mode with the same seed and threads, normally and under `faketime -f "+0 x40"`
(Debian package faketime), and the two metrics.json["metrics"] are compared apart from keys that are times.
`shared/tests/test_baselines_contract.py` does the same with smaller budgets inside `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from astrobench.cli import BASELINES

ROOT = Path(__file__).resolve().parents[1]
TIME_WORDS = ("second", "time", "latency", "amortisation", "_ms", "speed")


def strip_times(d: dict) -> dict:
    return {k: strip_times(v) if isinstance(v, dict) else v for k, v in d.items()
            if not any(w in k.lower() for w in TIME_WORDS)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tracks", nargs="*", default=list(BASELINES))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    faketime = shutil.which("faketime")
    if faketime is None:
        print("check_reproducible.py: error: faketime not found; expected the Debian package faketime", file=sys.stderr)
        return 2
    unknown = sorted(set(args.tracks) - set(BASELINES))
    if unknown:
        print(f"check_reproducible.py: error: unknown track {unknown[0]!r}; expected one of {', '.join(BASELINES)}",
              file=sys.stderr)
        return 2
    env = dict(os.environ, ASTROBENCH_FAST="1", OMP_NUM_THREADS=str(args.threads))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for track in args.tracks:
            row = {}
            for name, prefix in (("normal", []), ("x40", [faketime, "-f", "+0 x40"])):
                out = Path(tmp) / track / name
                cmd = [*prefix, sys.executable, str(ROOT / BASELINES[track]), "--threads", str(args.threads),
                       "--device", "cpu", "--out", str(out)]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    return 1
                report = json.loads((out / "metrics.json").read_text())
                row[name] = {"metrics": strip_times(report["metrics"]), "wall_s": round(time.perf_counter() - t0, 1),
                             "seconds_reported": report["seconds"]}
            same = row["normal"]["metrics"] == row["x40"]["metrics"]
            rows[track] = {"identical_metrics": same, "normal_wall_s": row["normal"]["wall_s"],
                           "x40_wall_s": row["x40"]["wall_s"], "x40_seconds_reported": row["x40"]["seconds_reported"],
                           "metrics": row["normal"]["metrics"]}
            print(f"{track:12s} identical={same}  wall {row['normal']['wall_s']} s / {row['x40']['wall_s']} s "
                  f"(x40 clock reports {row['x40']['seconds_reported']} s)")
    record = {"threads": args.threads, "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
              "load_average": [round(v, 2) for v in os.getloadavg()], "tracks": rows}
    (ROOT / "benchmarks" / "reproducible.json").write_text(json.dumps(record, indent=1) + "\n")
    return 0 if all(r["identical_metrics"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
