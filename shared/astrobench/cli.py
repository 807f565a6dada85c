"""The ``astrobench`` command: list, info, fetch, doctor, badges, score, demo.

Bad input (unknown dataset, bad flag, missing file) prints one line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

EXIT_USAGE = 2

# Track baselines run by `astrobench demo`, in table order (paths in a checkout of the kit).
BASELINES = {
    "generative": "generative/diffusion.py",
    "sbi": "sbi/npe.py",
    "multimodal": "multimodal/contrastive.py",
    "anomaly": "anomaly/autoencoder.py",
    "superres": "superres/upsampler.py",
}


def baseline_scripts() -> dict:
    """{track: path} of the five baseline scripts: the checkout's when the package runs from one (editable), else the
    copies a wheel ships in ``astrobench/project_template/template/pipeline/`` (the same files, vendored for
    ``astrobench new``), so ``astrobench demo`` runs them from a non-editable install too (Colab's)."""
    here = Path(__file__).resolve().parent
    checkout, shipped = here.parents[1], here / "project_template" / "template" / "pipeline"
    found = {}
    for track, script in BASELINES.items():
        for path in (checkout / script, shipped / Path(script).name):
            if path.is_file():
                found[track] = path
                break
    return found


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage by default)
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _fail(message: str) -> int:
    print(f"astrobench: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# ---------------------------------------------------------------- subcommands


def cmd_list(args) -> int:
    from . import data

    for name in data.list():
        spec = data.registry.get(name)
        print(f"{name:24s} {spec.kind:9s} v{spec.version:8s} {spec.description}")
    return 0


def cmd_info(args) -> int:
    from . import data

    info = data.info(args.name)
    if args.json:
        print(json.dumps(info, indent=1, default=str))
    else:
        print(info["card"])
    return 0


def cmd_fetch(args) -> int:
    from . import data

    saved = os.environ.get(data.cache.ENV_VAR)
    try:
        return _fetch(args, data)
    finally:  # --cache-dir applies to this command only (matters when main() runs in-process)
        if saved is None:
            os.environ.pop(data.cache.ENV_VAR, None)
        else:
            os.environ[data.cache.ENV_VAR] = saved


def _fetch(args, data) -> int:
    if args.cache_dir:
        os.environ[data.cache.ENV_VAR] = str(Path(args.cache_dir).expanduser())
        try:
            Path(os.environ[data.cache.ENV_VAR]).mkdir(parents=True, exist_ok=True)
            probe = Path(os.environ[data.cache.ENV_VAR]) / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError:
            return _fail(f"cache dir {args.cache_dir} is not writable; expected a writable directory")
    names = data.list() if args.all else args.names
    if not names:
        return _fail("fetch: expected one or more dataset names, or --all")
    for name in names:
        data.registry.get(name)  # validates every name before any work starts
    variants = {"both": (True, False), "fast": (True,), "full": (False,)}[args.variant]
    if args.dry_run:
        return _dry_run(names, variants, data)
    for name in names:
        spec = data.registry.get(name)
        if spec.kind != "simulated":
            print(f"{name}: {data.fetch(name)}")
            continue
        # notebooks in quick (FAST) mode read the FAST variant, full runs the full one: make what --variant asks for
        for fast in variants if getattr(spec, "path", None) is None else (None,):  # user data: one folder
            data.load(name, spec.splits[0], fast=fast)
            label = "" if fast is None else f" ({'fast' if fast else 'full'})"
            print(f"{name}{label}: {data.path_of(name, fast=fast)}")
    return 0


def _rows(sizes: dict) -> str:
    return " + ".join(f"{n:,} {split}" for split, n in sizes.items())


def _dry_run(names, variants, data) -> int:
    """What ``fetch`` would download (remote: size, hash) or generate (simulated: rows per variant, and the size on
    disk where a cached variant gives the bytes per row), without doing it."""
    from .data.cache import dir_size

    total, rows_to_make, bytes_to_make, unknown = 0, 0, 0, 0
    print(f"{'dataset':24s} {'kind':9s} {'size':>12s}  {'sha256':20s} state")
    for name in names:
        spec = data.registry.get(name)
        if spec.kind == "remote":
            cached = data.remote.is_cached(spec)
            total += 0 if cached else spec.size_bytes
            sha = "published" if spec.sha256 else "trust-on-first-use"
            print(f"{name:24s} {spec.kind:9s} {spec.size_bytes / 1e6:9,.0f} MB  {sha:20s} "
                  f"{'cached' if cached else 'would download from ' + spec.urls[0].split('/')[2]}")
            continue
        paths = {fast: data.path_of(name, fast=fast) for fast in (True, False)}
        ready = {fast: (p / "manifest.json").is_file() for fast, p in paths.items()}
        n_rows = {fast: sum(spec.sizes["fast" if fast else "full"].values()) for fast in (True, False)}
        per_row = next((dir_size(paths[f]) / n_rows[f] for f in (True, False) if ready[f] and n_rows[f]), None)
        for fast in variants:
            variant = "fast" if fast else "full"
            if ready[fast]:
                size = f"{dir_size(paths[fast]) / 1e6:,.0f} MB"
            elif per_row is not None:  # estimated from the other, cached variant's bytes per row
                size = f"~{per_row * n_rows[fast] / 1e6:,.0f} MB"
                bytes_to_make += per_row * n_rows[fast]
            else:
                size = f"{n_rows[fast]:,} rows"
                unknown += 1
            if not ready[fast]:
                rows_to_make += n_rows[fast]
            print(f"{name:24s} {spec.kind:9s} {size:>12s}  {'(generated)':20s} {variant}: "
                  f"{_rows(spec.sizes[variant])}, {'cached' if ready[fast] else 'would generate locally'}")
    print(f"total to download: {total / 1e9:,.2f} GB")
    estimate = f", ~{bytes_to_make / 1e9:,.2f} GB" if bytes_to_make else ""
    sizes_unknown = f" (+ {unknown} variant(s) of unknown size until generated)" if unknown and bytes_to_make else ""
    print(f"total to generate: {rows_to_make:,} rows{estimate}{sizes_unknown}")
    return 0


def _version(mod: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(mod)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_doctor(args) -> int:
    from . import __version__, data
    from .data.cache import dir_size
    from .notebook import fast

    fast()  # a bad ASTROBENCH_FAST fails here, before anything is printed
    root = data.cache_dir()
    problem = data.cache.unwritable(root)
    if problem and problem.endswith("is a file"):  # `fetch` refuses it too; "not cached" would hide the cause
        return _fail(f"dataset cache {root} (${data.cache.ENV_VAR}): {problem}; expected a folder")
    print(f"astrobench {__version__}   Python {platform.python_version()} ({sys.executable})")
    print(f"platform   {platform.platform()}   CPU cores: {os.cpu_count()}")
    for pkg in ("numpy", "scipy", "astropy", "skypy", "speclite", "pooch", "torch", "jax", "galsim",
                "diffusers", "sbi", "scikit-learn", "scikit-image", "accelerate"):
        print(f"  {pkg:14s} {_version(pkg)}")
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f"torch: {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    except ImportError:
        pass
    print(f"GPU        {gpu}")
    print(f"FAST mode  {fast()}  (ASTROBENCH_FAST={os.environ.get('ASTROBENCH_FAST')!r}, CI={'CI' in os.environ})")
    note = f"; read-only: {problem}" if problem else ""  # a pre-filled shared cache may be; missing sets then fail
    print(f"cache      {root}  ({dir_size(root) / 1e6:,.1f} MB{note})")
    for row in data.status():
        state = "ready" if row["ready"] else "not cached"
        if row.get("verified"):
            state += ", sha256 verified"
        print(f"  {row['name']:24s} {row['variant']:7s} {state:28s} {row['bytes'] / 1e6:,.1f} MB")
    return 0


def cmd_badges(args) -> int:
    from . import badges

    try:
        changed = badges.rewrite(args.repo, args.branch)
    except ValueError as err:
        return _fail(str(err))
    print(f"badges now point at {args.repo}@{args.branch}; {len(changed)} files changed")
    for p in changed:
        print(f"  {p}")
    return 0


def cmd_score(args) -> int:
    from . import metrics
    from .baseline import check_file

    if args.json:
        check_file(args.json, "--json")  # before scoring, which can take a while
    result = metrics.score(args.target, args.predictions)
    text = json.dumps(result, indent=1, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


def cmd_demo(args) -> int:
    """Generate the default dataset with a figure + summary; then run each track baseline (FAST)."""
    from . import data, plotting
    from .baseline import check_folder
    from .notebook import fast

    out = check_folder(args.out)
    fast()  # a bad ASTROBENCH_FAST fails here, before any work
    data.cache.check_writable(data.cache_dir())
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train = data.load("galaxies", "train")
    test = data.load("galaxies", "test")
    seconds = time.perf_counter() - t0
    import matplotlib

    matplotlib.use("Agg")
    t = train.truth
    fig = plotting.image_grid(train.images[:32], titles=[f"z={z:.2f} r={r:.1f}" for z, r in zip(t["z"], t["mag_r"])])
    fig.savefig(out / "galaxies.png", dpi=90)
    summary = {
        "dataset": "galaxies", "fast": fast(), "train": len(train), "test": len(test), "seconds": round(seconds, 2),
        "sha256": train.meta["sha256"], "path": train.meta["path"],
        "median": {c: float(__import__("numpy").median(t[c])) for c in ("z", "mag_r", "g_r", "hlr_arcsec", "sersic_n")},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"galaxies: {len(train)} train + {len(test)} test in {seconds:.1f} s -> {out / 'galaxies.png'}")
    print(json.dumps(summary["median"], indent=1))
    rows = []
    scripts = baseline_scripts()
    for track in BASELINES:
        if track not in scripts:  # neither in a checkout nor in the installed package: say so, do not skip silently
            rows.append((track, "FAILED", "script not found (a broken install?)", 0.0))
            continue
        dest = (out / track).resolve()
        t1 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(scripts[track]), "--fast", "--out", str(dest)], cwd=out)
        wall = time.perf_counter() - t1
        metrics_file = dest / "metrics.json"
        if proc.returncode != 0 or not metrics_file.is_file():
            rows.append((track, "FAILED", f"exit {proc.returncode}", wall))
            continue
        m = json.loads(metrics_file.read_text())
        flat = {k: v for k, v in m.get("metrics", {}).items() if isinstance(v, (int, float))}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(flat.items())[:3])
        rows.append((track, m.get("dataset", ""), shown, wall))
    if rows:
        print(f"\n{'track':12s} {'dataset':20s} {'seconds':>8s}  metrics (FAST mode)")
        for track, ds, shown, wall in rows:
            print(f"{track:12s} {ds:20s} {wall:8.1f}  {shown}")
    return 1 if any(r[1] == "FAILED" for r in rows) else 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="astrobench", description="Astro x ML hackathon kit: datasets, scoring, diagnostics.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("list", help="list registered datasets")
    s.set_defaults(func=cmd_list)
    s = sub.add_parser("info", help="print a dataset's card")
    s.add_argument("name")
    s.add_argument("--json", action="store_true", help="registry entry and card as JSON")
    s.set_defaults(func=cmd_info)
    s = sub.add_parser("fetch", help="download (remote) or generate (simulated) datasets into the cache")
    s.add_argument("names", nargs="*")
    s.add_argument("--all", action="store_true", help="every registered dataset")
    s.add_argument("--dry-run", action="store_true",
                   help="list what would be fetched: download sizes, rows (and size, once known) of generated sets")
    s.add_argument("--variant", choices=("both", "fast", "full"), default="both",
                   help="simulated sets: which variant to generate, FAST (quick-mode notebooks, CI) or full "
                        "(default: both)")
    s.add_argument("--cache-dir", help="cache to fill (default: $ASTROBENCH_DATA or the user cache dir)")
    s.set_defaults(func=cmd_fetch)
    s = sub.add_parser("doctor", help="versions, CPU/GPU, cache and dataset status")
    s.set_defaults(func=cmd_doctor)
    s = sub.add_parser("badges", help="point every Colab/Binder badge at a fork")
    s.add_argument("--repo", required=True, help="OWNER/NAME of the fork")
    s.add_argument("--branch", default="main")
    s.set_defaults(func=cmd_badges)
    s = sub.add_parser("score", help="score a predictions .npz with the track's metric")
    s.add_argument("target", help="TRACK or TRACK:TASK")
    s.add_argument("predictions", help="predictions .npz")
    s.add_argument("--json", help="also write the metrics to this file")
    s.set_defaults(func=cmd_score)
    s = sub.add_parser("demo", help="generate the default data, plot it, run every track baseline in FAST mode")
    s.add_argument("--out", default="outputs/demo")
    s.set_defaults(func=cmd_demo)
    from . import project

    project.add_parser(sub)  # astrobench/project.py: `astrobench new`, a team's own project (copier)
    from . import leaderboard

    leaderboard.add_parser(sub)  # the command's logic lives in astrobench/leaderboard.py
    from . import codabench, event

    event.add_parser(sub)  # astrobench/event.py: hidden test labels (init, release, score)
    codabench.add_parser(sub)  # astrobench/codabench.py: a Codabench v2 competition bundle
    return p


def main(argv=None) -> int:
    from .baseline import BaselineError
    from .data.errors import DataError
    from .metrics import ScoreInputError
    from .notebook import SettingError

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except BrokenPipeError:  # `astrobench info galaxies | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (UsageError, DataError, ScoreInputError, BaselineError) as err:
        return _fail(str(err).splitlines()[0]) if not isinstance(err, UsageError) else _fail_usage(err)
    except SettingError as err:  # e.g. ASTROBENCH_FAST=maybe (astrobench.notebook.fast)
        return _fail(str(err).splitlines()[0])


def _fail_usage(err) -> int:
    print(str(err), file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
