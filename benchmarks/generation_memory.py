"""Peak memory (RSS) of generating each simulated dataset from an empty cache, against Binder's 2 GB.

    python benchmarks/generation_memory.py                      # every simulated dataset, full size
    python benchmarks/generation_memory.py galaxies --fast      # one dataset, FAST size

A notebook's first full-size `data.load` generates the set inside the kernel, so this peak adds to whatever the
kernel already holds (torch: ~0.3 GB). `notebook_memory.py` measures notebooks with the data already cached; this
measures the generation. Each dataset is generated in a fresh Python process (its own high-water mark, VmHWM
from /proc) into a temporary cache that is deleted afterwards. Memory does not depend on the machine's load, so
this need not run on a quiet machine; the wall times it prints do. Prints and writes a markdown table (``--out``,
default benchmarks/generation_memory_<mode>.md) and JSON beside it. Exit 0 when every peak is within
``--limit-gb``, 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_GB = 2.0  # Binder's memory limit
CHILD = """import json, resource, sys, time
from astrobench import data
t0 = time.perf_counter()
for split in data.registry.get(sys.argv[1]).splits:
    d = data.load(sys.argv[1], split, fast=sys.argv[2] == "fast", progress=False)
try:  # VmHWM: this process image's own peak; Linux's ru_maxrss also keeps the parent's from before exec
    peak = next(int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print("ASTROBENCH_GEN", json.dumps({"peak": peak, "wall": time.perf_counter() - t0, "sha256": d.meta["sha256"]}))"""


def simulated() -> list[str]:
    from astrobench.data import registry

    return sorted(n for n, s in registry.all_specs().items() if s.kind == "simulated" and n in registry.builtin_names())


def measure(name: str, mode: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "ASTROBENCH_DATA": cache}
        proc = subprocess.run([sys.executable, "-c", CHILD, name, mode], env=env, capture_output=True, text=True)
    row = {"dataset": name, "mode": mode, "peak_gb": None, "wall_s": None, "sha256": None, "error": None}
    if proc.returncode or "ASTROBENCH_GEN" not in proc.stdout:
        row["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return row
    out = json.loads(proc.stdout.rsplit("ASTROBENCH_GEN", 1)[1].splitlines()[0])
    row.update(peak_gb=round(out["peak"] / 1e9, 3), wall_s=round(out["wall"], 1), sha256=out["sha256"])
    return row


def table(rows: list[dict], limit: float) -> str:
    lines = [f"| dataset | mode | peak RSS while generating, GB | within {limit:g} GB | wall (s) |",
             "|---|---|---|---|---|"]
    for r in rows:
        if r["error"]:
            lines.append(f"| `{r['dataset']}` | {r['mode']} | failed: {r['error']} | no | |")
        else:
            ok = "yes" if r["peak_gb"] <= limit else "**no**"
            lines.append(f"| `{r['dataset']}` | {r['mode']} | {r['peak_gb']:.2f} | {ok} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="*", help="simulated datasets (default: every built-in one)")
    p.add_argument("--fast", action="store_true", help="FAST sizes instead of full")
    p.add_argument("--limit-gb", type=float, default=LIMIT_GB)
    p.add_argument("--out", help="markdown table (default benchmarks/generation_memory_<mode>.md; JSON beside it)")
    args = p.parse_args(argv)
    known = simulated()
    unknown = [n for n in args.datasets if n not in known]
    if unknown:
        print(f"error: not a built-in simulated dataset: {', '.join(unknown)}; expected one of: {', '.join(known)}",
              file=sys.stderr)
        return 2
    mode = "fast" if args.fast else "full"
    from tqdm.auto import tqdm

    rows = [measure(n, mode) for n in tqdm(args.datasets or known, desc=f"generating ({mode})", unit="set")]
    text = table(rows, args.limit_gb)
    print(text)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / f"generation_memory_{mode}.md"
    out.write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["peak_gb"] is not None and r["peak_gb"] <= args.limit_gb for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
