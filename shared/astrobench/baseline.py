"""What the five baseline scripts share: the common flags, FULL/FAST settings, threads and seeds, an opt-in
wall-clock stop, versions and metrics.json, and the one-line error (exit 2).

A script's run is defined by counts (steps, epochs, simulations), never by seconds, so the same seed and
``--threads`` give the same metrics on a busy or an idle machine, slow or fast. The one clock is
``--max-minutes``: opt-in, recorded in metrics.json (``"stopped_by_clock": true``) when it fires, and such a
run is never quoted as the baseline.

    p = baseline.parser("autoencoder.py", __doc__, out="outputs/anomaly", dataset="galaxies-anomaly",
                        budget="epochs")
    try:
        args = p.parse_args(argv)
        cfg = baseline.settings(FULL, FAST, args)   # the mode's settings + --epochs / --set overrides
        run = baseline.start(args)                  # validates, seeds, threads, device, accelerator
        ...
        run.write_metrics("anomaly", "detect", args.dataset, result, cfg, meta, ("torch", "scikit-learn"))
    except baseline.ERRORS as err:
        return baseline.fail("autoencoder.py", err)
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import notebook, scaling
from .errors import BaselineError, DataError, ScoreInputError

# CPU threads when neither --threads nor OMP_NUM_THREADS says: a constant, so that the default run is the same on
# every machine (torch's reductions depend on the thread count); the READMEs' numbers are for this value.
DEFAULT_THREADS = 2
SHARD_LOG_ENV = "ASTROBENCH_SHARD_LOG"  # a folder: each process writes which rows it trained on (the DDP tests)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line (argparse prints the whole usage block by default)
        raise BaselineError(f"{message} (see --help)")


def parser(script: str, doc: str, *, out: str, dataset: str, budget: str = "steps", budget_help: str = "",
           datasets=None) -> argparse.ArgumentParser:
    """The common flags of every baseline, plus its one budget flag (``--steps`` or ``--epochs``)."""
    assert budget in ("steps", "epochs")
    p = _Parser(prog=script, description=doc.strip().split("\n\n")[0],
                epilog="Budgets are counts, never seconds: the same --seed and --threads give the same metrics on a "
                       "busy or an idle machine.")
    p.add_argument("--fast", action="store_true", help="FAST run: small data and model (also ASTROBENCH_FAST=1)")
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    p.add_argument("--seed", type=int, default=0, help="random seed, >= 0 (default 0)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: cuda when visible")
    p.add_argument("--dataset", default=dataset, help=f"default {dataset}"
                   + (f"; one of {', '.join(datasets)}" if datasets else ""))
    p.add_argument("--threads", type=int, help="torch CPU threads (default: $OMP_NUM_THREADS, else "
                   f"{DEFAULT_THREADS}); part of what makes a run reproducible")
    p.add_argument(f"--{budget}", type=int, metavar="N",
                   help=budget_help or f"training {budget} (default: the mode's setting)")
    p.add_argument("--max-minutes", type=float, metavar="M", help="opt-in wall-clock stop: recorded in "
                   "metrics.json as stopped_by_clock; such a run is not comparable with the baseline")
    p.add_argument("--pretrained", action="store_true", help="skip training: evaluate the shipped model "
                   "(<track>/pretrained/, checked against the current data)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting of the mode (see FULL/FAST in the script), e.g. --set lr=1e-3")
    scaling.add_arguments(p)  # --grad-accum, --mixed-precision
    p.set_defaults(_budget=budget)
    return p


def settings(full: dict, fast: dict, args) -> dict:
    """A copy of FULL or FAST (the same keys), with the budget flag and each ``--set KEY=VALUE`` applied."""
    assert full.keys() == fast.keys(), "FULL and FAST must have the same keys"
    cfg = dict(fast if is_fast(args) else full)
    budget = args._budget
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or key not in cfg:
            raise BaselineError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(cfg)}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        old = cfg[key]
        ok = (type(value) is type(old) or (isinstance(old, float) and type(value) is int)
              or old is None or (isinstance(old, (tuple, list)) and isinstance(value, (tuple, list))))
        if not ok:
            raise BaselineError(f"--set {item!r}: expected a {type(old).__name__} like {old!r}")
        cfg[key] = float(value) if isinstance(old, float) else value
    if getattr(args, budget) is not None:
        if getattr(args, budget) < 1:
            raise BaselineError(f"--{budget} {getattr(args, budget)}: expected a positive integer")
        cfg[budget] = getattr(args, budget)
    for key in COUNTS:  # counts that must be positive, whichever way they were set
        if isinstance(cfg.get(key), int) and cfg[key] < 1:
            raise BaselineError(f"--set {key}={cfg[key]}: expected a positive integer")
    return cfg


COUNTS = ("steps", "epochs", "batch", "samples", "num_sims")


def is_fast(args) -> bool:
    """--fast, or ASTROBENCH_FAST / CI as ``astrobench.notebook.fast`` reads them."""
    try:
        env = notebook.fast()  # checked even with --fast: a typo in the variable is worth one line
    except ValueError as err:
        raise BaselineError(str(err)) from None
    return bool(args.fast) or env


def threads(requested: int | None = None) -> int:
    """--threads, else $OMP_NUM_THREADS, else DEFAULT_THREADS: never the load average."""
    if requested is not None:
        if requested < 1:
            raise BaselineError(f"--threads {requested}: expected a positive integer")
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise BaselineError(f"OMP_NUM_THREADS={env!r}: expected a positive integer")
        return int(env)
    return DEFAULT_THREADS


def check_folder(path, flag: str = "--out") -> Path:
    """A folder we can create or write into, checked before any long work (nothing is created here)."""
    from .data.cache import unwritable

    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise BaselineError(f"{flag} {path}: is a file; expected a folder")
    problem = unwritable(path)
    if problem:
        raise BaselineError(f"{flag} {path}: {problem}; expected a writable folder")
    return path


def check_file(path, flag: str) -> Path:
    """An output file we will be able to write, checked before the long work that produces it."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise BaselineError(f"{flag} {path}: is a folder; expected a file name")
    check_folder(path.parent, flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise BaselineError(f"{flag} {path}: not writable")
    return path


def check_cache():
    """$ASTROBENCH_DATA must be a folder, and one we can write into unless it already holds data (organisers may
    pre-fetch into a read-only place); checked again, per dataset, before anything is generated or downloaded."""
    from .data.cache import ENV_VAR, cache_dir, unwritable

    root = cache_dir()
    if root.exists() and not root.is_dir():
        raise BaselineError(f"${ENV_VAR} {root}: is a file; expected a folder")
    if not root.exists() and unwritable(root):
        raise BaselineError(f"${ENV_VAR} {root}: {unwritable(root)}; expected a writable folder")


@dataclass
class Run:
    """One baseline run: what ``start`` resolved, the opt-in clock, and the metrics.json writer."""

    script: str
    fast: bool
    seed: int
    out: Path
    device: str
    threads: int
    acc: object  # accelerate.Accelerator
    max_minutes: float | None = None
    stopped_by_clock: bool = False
    t0: float = field(default_factory=time.perf_counter)

    @property
    def mode(self) -> str:
        return "fast" if self.fast else "full"

    @property
    def is_main(self) -> bool:
        return self.acc.is_main_process

    def out_of_time(self, collective: bool = True) -> bool:
        """True once --max-minutes has passed (never without the flag). Under several processes the main
        process's clock decides, so every process stops at the same step; ``collective=False`` when only the
        main process trains (the others must not be waited for)."""
        if self.max_minutes is None:
            return False
        late = time.perf_counter() - self.t0 > 60 * self.max_minutes
        if self.acc.num_processes > 1 and collective:
            import torch

            flag = torch.tensor([float(late and self.is_main)], device=self.acc.device)
            late = bool(self.acc.reduce(flag, "sum").item())
        self.stopped_by_clock |= late
        return late

    def record(self) -> dict:
        """The run's settings that belong in every metrics.json config."""
        return {"mode": self.mode, "seed": self.seed, "device": self.device, "threads": self.threads,
                "processes": self.acc.num_processes, "grad_accum": self.acc.gradient_accumulation_steps,
                "mixed_precision": self.acc.mixed_precision, "max_minutes": self.max_minutes}

    def write_metrics(self, track: str, task: str, dataset: str, metrics: dict, config: dict, meta: dict | None,
                      packages=(), **extra) -> dict:
        """metrics.json (atomically): track, task, dataset, metrics, config (+ the run's settings), versions
        (packages + the dataset's name, version, seed and sha256), seconds, stopped_by_clock."""
        report = {"track": track, "task": task, "dataset": dataset, "metrics": metrics,
                  "config": {**config, **self.record()}, "versions": versions(packages, meta),
                  "seconds": round(time.perf_counter() - self.t0, 1), "stopped_by_clock": self.stopped_by_clock,
                  **extra}
        write_json(self.out / "metrics.json", report)
        if self.stopped_by_clock:
            print(f"{self.script}: stopped by --max-minutes {self.max_minutes}: not comparable with the baseline",
                  file=sys.stderr)
        return report


def start(args, *, devices=("auto", "cpu", "cuda")) -> Run:
    """Validate the common flags (before any long work), then seed, set threads and build the Accelerator."""
    fast = is_fast(args)
    if args.seed < 0:
        raise BaselineError(f"--seed {args.seed}: expected an integer >= 0")
    budget = getattr(args, args._budget)
    if budget is not None and budget < 1:
        raise BaselineError(f"--{args._budget} {budget}: expected a positive integer")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise BaselineError(f"--max-minutes {args.max_minutes}: expected a positive number")
    out = check_folder(args.out)
    check_cache()
    n_threads = threads(args.threads)
    device = notebook.device(args.device)
    device = "cpu" if device == "mps" else device  # some ops the baselines use are missing on mps
    if device not in devices:
        raise BaselineError(f"--device {device}: expected one of {', '.join(devices)}")
    if device == "cpu" and args.mixed_precision == "fp16":
        raise BaselineError("--mixed-precision fp16: needs a GPU; expected no or bf16 on the CPU")
    try:
        acc = scaling.accelerator_from_args(args, device)
    except ValueError as err:
        raise BaselineError(str(err)) from None
    import torch

    torch.set_num_threads(n_threads)
    notebook.seed_everything(args.seed)
    return Run(script=Path(sys.argv[0]).name, fast=fast, seed=args.seed, out=out, device=device,
               threads=n_threads, acc=acc, max_minutes=args.max_minutes)


def versions(packages=(), meta: dict | None = None) -> dict:
    """Installed versions of astrobench, numpy, torch and ``packages``, plus the dataset's identity."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for p in ("astrobench", "numpy", "torch", *packages):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    if meta is not None:
        out["dataset"] = {k: meta.get(k) for k in ("name", "version", "seed", "sha256")}
    return out


def write_json(path, obj) -> None:
    """Write JSON atomically: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


# ---------------------------------------------------------------- batches


def epoch_batches(acc, n: int, batch: int, generator, drop_last: bool = False, name: str = ""):
    """Batches of row indices, ``torch.randperm(n, generator)`` once per epoch, sharded by accelerate (each
    process takes every P-th batch of the same permutation). The permutation is drawn when an epoch starts
    (torch's RandomSampler draws one more at an epoch's end, which would shift other draws from ``generator``)."""
    import torch

    class EpochPermutation(torch.utils.data.Sampler):
        def __len__(self):
            return n

        def __iter__(self):
            return iter(torch.randperm(n, generator=generator).tolist())

    loader = torch.utils.data.DataLoader(range(n), batch_size=batch, sampler=EpochPermutation(),
                                         drop_last=drop_last, generator=torch.Generator())
    return _LoggedLoader(acc.prepare_data_loader(loader, device_placement=False), acc, name)


class _LoggedLoader:
    """The prepared loader; under $ASTROBENCH_SHARD_LOG each process records its first batch (the DDP tests)."""

    def __init__(self, loader, acc, name):
        self.loader, self.acc, self.name, self.logged = loader, acc, name, False

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for idx in self.loader:
            if not self.logged:
                log_shard(self.acc, idx.tolist(), self.name)
                self.logged = True
            yield idx


def shard(acc, *arrays, name: str = ""):
    """This process's rows of each array: rows r, r + P, ... (all of them in one process)."""
    rank, world = acc.process_index, acc.num_processes
    if arrays:
        log_shard(acc, list(range(rank, min(len(arrays[0]), rank + 64 * world), world)), name)
    out = tuple(a[rank::world] for a in arrays)
    return out[0] if len(out) == 1 else out


def log_shard(acc, indices, name: str = "") -> None:
    """Under $ASTROBENCH_SHARD_LOG (set by ``astrobench.testing.run_under_accelerate``) and several processes,
    write ``shard_rank{r}[_name].json``: which rows this process trained on first."""
    folder = os.environ.get(SHARD_LOG_ENV)
    if not folder or acc.num_processes == 1:
        return
    suffix = f"_{name}" if name else ""
    log = {"rank": acc.process_index, "processes": acc.num_processes, "first_indices": list(indices)}
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_json(Path(folder) / f"shard_rank{acc.process_index}{suffix}.json", log)


# ---------------------------------------------------------------- errors

# what a script turns into one line and exit 2: bad flags, bad data, bad predictions
ERRORS = (BaselineError, DataError, ScoreInputError)


def fail(script: str, err: Exception) -> int:
    """Print ``script: error: <first line>`` on stderr; return 2."""
    text = str(err).strip().splitlines()
    print(f"{script}: error: {text[0] if text else type(err).__name__}", file=sys.stderr)
    return 2


def local_run(device: str = "cpu", seed: int = 0, fast: bool | None = None, out=".") -> Run:
    """A plain one-process Run without flags, for notebooks and tests that call a script's functions."""
    dev = notebook.device(device)
    fast = notebook.fast() if fast is None else fast
    return Run(script="notebook", fast=fast, seed=seed, out=Path(out), device=dev,
               threads=_torch_threads(), acc=scaling.make_accelerator(dev))


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def save_npz(path, **arrays) -> None:
    """``np.savez_compressed`` atomically: a reader never sees half a file."""
    import numpy as np

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def save_predictions(path, meta: dict, inputs=(), **arrays) -> None:
    """predictions.npz (``save_npz``) with the record of the split they were made on (``made_on``: the dataset,
    version, split, FAST/full and the sha256 of each array in ``inputs``), which every scorer checks."""
    import numpy as np

    from . import data
    from .metrics import MADE_ON

    save_npz(path, **arrays, **{MADE_ON: np.str_(json.dumps(data.identity(meta, inputs)))})


# ---------------------------------------------------------------- shipped models (<track>/pretrained/)


def _sha256(path) -> str:
    from .data.cache import sha256_file

    return sha256_file(Path(path))


def data_identity(meta: dict) -> dict:
    """What a shipped model must match in the data it is evaluated on: the dataset's name, version and seed, and a
    hash of its generator settings (which FAST and full share); the full set's sha256 is kept for the record."""
    import hashlib

    config = json.dumps(meta.get("config", {}), sort_keys=True, default=_jsonable)
    return {"name": meta.get("name"), "version": meta.get("version"), "seed": meta.get("seed"),
            "config_sha256": hashlib.sha256(config.encode()).hexdigest(), "sha256": meta.get("sha256"),
            "fast": meta.get("fast")}


def save_pretrained(folder, state_dict: dict, config: dict, report: dict, meta: dict, command: str,
                    name: str = "model") -> dict:
    """Ship a trained model: ``name``.safetensors, config.json (what ``build_model`` needs), the run's
    metrics.json, and manifest.json (every file's sha256, the training data's identity, the exact command, the
    budget and the wall time). Returns the manifest."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(folder / f"{name}.safetensors"))
    write_json(folder / "config.json", config)
    write_json(folder / "metrics.json", report)
    files = (f"{name}.safetensors", "config.json", "metrics.json")
    run_config = report.get("config", {})
    budget = {k: run_config[k] for k in (*COUNTS, "steps_done", "epochs_trained") if run_config.get(k) is not None}
    manifest = {"files": {f: _sha256(folder / f) for f in files}, "dataset": data_identity(meta),
                "command": command, "budget": budget,
                "seconds": report.get("seconds"), "threads": run_config.get("threads"),
                "versions": report.get("versions")}
    write_json(folder / "manifest.json", manifest)
    return manifest


def load_pretrained(folder, meta: dict, name: str = "model") -> tuple[dict, dict]:
    """(state_dict, config) of a shipped model, after checking its manifest: each file's sha256, and that it was
    trained on the data this run evaluates on (same dataset, version, seed and generator settings; a full run also
    the same sha256). Anything else is a one-line BaselineError saying how to regenerate the model: a stale
    checkpoint is never used silently."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        raise BaselineError(f"--pretrained: no shipped model in {folder} (expected manifest.json); train one instead")
    manifest = json.loads((folder / "manifest.json").read_text())
    for fname, sha in manifest["files"].items():
        if not (folder / fname).is_file() or _sha256(folder / fname) != sha:
            raise BaselineError(f"--pretrained: {folder / fname} is missing or changed (sha256 differs from "
                                "manifest.json); restore it with git or retrain")
    shipped, now = manifest["dataset"], data_identity(meta)
    keys = ("name", "version", "seed", "config_sha256") + (("sha256",) if not now["fast"] else ())
    if meta.get("kind") == "event":  # an event's secret test split: same generator, another seed (never released)
        keys = ("name", "version", "config_sha256")
    stale = [k for k in keys if shipped.get(k) != now.get(k)]
    if stale:
        raise BaselineError(f"--pretrained: the shipped model was trained on {shipped['name']} v{shipped['version']} "
                            f"and the data now differ in {', '.join(stale)}; regenerate it: {manifest['command']}")
    return load_file(str(folder / f"{name}.safetensors")), json.loads((folder / "config.json").read_text())


# ---------------------------------------------------------------- flags


def names(flag: str, text: str, allowed, least: int = 1, need: str | None = None) -> tuple:
    """A comma-separated choice such as ``--modalities ground,spectrum``: the distinct names in ``allowed``'s order,
    at least ``least`` of them and ``need`` among them; else a one-line BaselineError."""
    given = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in given if t not in allowed]
    if unknown:
        raise BaselineError(f"{flag} {text}: unknown name {unknown[0]!r}; expected names from {', '.join(allowed)}")
    chosen = tuple(a for a in allowed if a in given)
    if len(chosen) < least or (need and need not in chosen):
        raise BaselineError(f"{flag} {text}: expected at least {least} distinct names of {', '.join(allowed)}"
                            + (f", {need} among them" if need else ""))
    return chosen
