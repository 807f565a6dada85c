"""Peak memory (RSS) of each notebook's kernel, against Binder's 2 GB.

    python benchmarks/notebook_memory.py                      # every notebook, FAST (what `make test` runs)
    python benchmarks/notebook_memory.py --mode full          # full size (slow: hours on a 2-core CPU)
    python benchmarks/notebook_memory.py anomaly/02_autoencoder_baseline.ipynb --out table.md

Each notebook runs top to bottom in a fresh kernel (jupyter_client, in the notebook's folder, as Jupyter would), with
ASTROBENCH_FAST=1 (``--mode fast``) or 0 (``--mode full``). One extra cell at the end reads the kernel's own peak
resident set size from the operating system (``getrusage``: the high-water mark of the whole kernel process, data,
torch and all, not a sample), plus the peak of any child process it waited for. Prints and writes a markdown table
(``--out``, default benchmarks/notebook_memory_<mode>.md) and JSON beside it. A cell that runs over ``--timeout``
stops the notebook; its row then gives the kernel's peak so far (``partial_gb``, from /proc on Linux) as a lower
bound. Exit 0 when every notebook ran and
peaked at or under ``--limit-gb``, 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_GB = 2.0  # Binder's memory limit
PROBE = """import json, resource, sys
_scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
print("ASTROBENCH_PEAK_RSS", json.dumps({k: resource.getrusage(w).ru_maxrss * _scale
                                          for k, w in (("kernel", resource.RUSAGE_SELF),
                                                       ("children", resource.RUSAGE_CHILDREN))}))"""


def notebooks() -> list[Path]:
    skip = {".venv", ".git", ".ipynb_checkpoints", "outputs", "build"}
    return sorted(p for p in ROOT.rglob("*.ipynb") if not skip & set(p.relative_to(ROOT).parts))


def measure(path: Path, mode: str, timeout: int) -> dict:
    """Run one notebook's code cells in a fresh kernel, then the probe; {"notebook", "mode", "peak_gb",
    "children_gb", "cells", "error"}. jupyter_client directly (what nbval uses), so no extra dependency."""
    import nbformat
    from jupyter_client.manager import start_new_kernel

    nb = nbformat.read(path, as_version=4)
    index = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]  # the notebook's own cell numbers
    cells = [nb.cells[i].source for i in index]
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(ASTROBENCH_FAST="1" if mode == "fast" else "0", MPLBACKEND="Agg")
    row = {"notebook": rel(path), "mode": mode, "peak_gb": None, "children_gb": None, "cells": len(cells),
           "error": None}
    printed = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])

    from tqdm.auto import tqdm

    def probe():  # the kernel's peak so far, in bytes
        printed.clear()
        kc.execute_interactive(PROBE, timeout=60, output_hook=hook, allow_stdin=False)
        return json.loads("".join(printed).rsplit("ASTROBENCH_PEAK_RSS", 1)[1].splitlines()[0])["kernel"]

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(path.parent), env=env)
    try:
        peak_so_far = 0
        for i, source in zip(index, tqdm(cells, desc=path.name, unit="cell", leave=False)):
            reply = kc.execute_interactive(source, timeout=timeout, output_hook=hook, allow_stdin=False)
            if reply["content"]["status"] != "ok":
                c = reply["content"]
                row["error"] = f"cell {i}: {c.get('ename', '')}: {c.get('evalue', '')}"[:200]
                return row
            if (now := probe()) > peak_so_far:  # the cell that raised the high-water mark (where to look)
                peak_so_far, row["peak_cell"] = now, i
        i = "probe"
        printed.clear()
        kc.execute_interactive(PROBE, timeout=60, output_hook=hook, allow_stdin=False)
    except TimeoutError:
        row["error"] = f"cell {i}: ran over --timeout {timeout} s"
        hwm = high_water_mark(km)  # the kernel is busy: read its peak so far from outside (Linux)
        if hwm is not None:
            row["partial_gb"] = round(max(hwm, peak_so_far) / 1e9, 3)
        return row
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(printed)
    if "ASTROBENCH_PEAK_RSS" not in text:
        row["error"] = "the probe cell printed no peak RSS"
        return row
    peak = json.loads(text.rsplit("ASTROBENCH_PEAK_RSS", 1)[1].splitlines()[0])
    row["peak_gb"], row["children_gb"] = round(peak["kernel"] / 1e9, 3), round(peak["children"] / 1e9, 3)
    return row


def high_water_mark(km) -> int | None:
    """The kernel process's peak RSS so far in bytes (VmHWM in /proc), or None where that cannot be read."""
    try:
        with open(f"/proc/{km.provisioner.pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (AttributeError, OSError, StopIteration, TypeError, ValueError):
        return None


def rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def table(rows: list[dict], limit: float) -> str:
    lines = [f"| notebook | mode | peak RSS of the kernel, GB (the cell that reached it) | within {limit:g} GB |",
             "|---|---|---|---|"]
    for r in rows:
        if r["error"] and r.get("partial_gb") is not None:  # stopped by --timeout: a lower bound, not a pass
            ok = "**no**" if r["partial_gb"] > limit else "not finished"
            lines.append(f"| `{r['notebook']}` | {r['mode']} | >= {r['partial_gb']:.2f} (stopped: {r['error']}) | "
                         f"{ok} |")
        elif r["error"]:
            lines.append(f"| `{r['notebook']}` | {r['mode']} | failed: {r['error']} | no |")
        else:
            peak = max(r["peak_gb"], r["children_gb"])  # a child process waited for is a separate process
            lines.append(f"| `{r['notebook']}` | {r['mode']} | {peak:.2f} (cell {r.get('peak_cell')}) | "
                         f"{'yes' if peak <= limit else '**no**'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", help="notebooks to measure (default: every notebook of the kit)")
    p.add_argument("--mode", choices=("fast", "full"), default="fast")
    p.add_argument("--limit-gb", type=float, default=LIMIT_GB)
    p.add_argument("--timeout", type=int, default=3600, help="seconds per cell (default 3600)")
    p.add_argument("--out", help="markdown table (default benchmarks/notebook_memory_<mode>.md; JSON beside it)")
    args = p.parse_args(argv)
    paths = [Path(n) for n in args.notebooks] or notebooks()
    bad = [str(n) for n in paths if not (n.is_file() and n.suffix == ".ipynb")]
    if bad:
        print(f"notebook_memory: error: {', '.join(bad)}: expected .ipynb files", file=sys.stderr)
        return 2
    out = Path(args.out or ROOT / "benchmarks" / f"notebook_memory_{args.mode}.md")
    if not out.parent.is_dir():
        print(f"notebook_memory: error: --out {out}: expected a file in an existing folder", file=sys.stderr)
        return 2
    from tqdm.auto import tqdm

    rows = []
    for path in tqdm(paths, desc=f"notebooks ({args.mode})", unit="nb"):
        rows.append(measure(path.resolve(), args.mode, args.timeout))
        text = table(rows, args.limit_gb)  # written after each notebook: a long sweep keeps what it measured
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps({"limit_gb": args.limit_gb, "rows": rows}, indent=1) + "\n")
    print(text)
    ok = all(not r["error"] and max(r["peak_gb"], r["children_gb"]) <= args.limit_gb for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
