"""Hidden test labels: organisers regenerate each track's test split from a secret, hand out the inputs without
any truth, and score against the private truth with the scorer ``astrobench score`` uses.

    astrobench event init --secret S [--tracks anomaly superres ...] [--out event-private] [--fast]
    astrobench event release [--private event-private] --out event-public
    astrobench event score TRACK[:TASK] PREDICTIONS.npz [--private event-private] [--json OUT]

Participants point one setting at the release, ``ASTROBENCH_EVENT=event-public``, and the same
``data.load(name, "test")`` returns the event's test inputs (train splits, and datasets the event does not cover,
stay the public ones). Scoring sets the same variable to the private folder of the track, so the scorer code is the
one of ``astrobench score``, unchanged.

Layout (each dataset folder is what ``data.load`` reads: ``<split>.<key>.npy`` and a manifest with sha256s)::

    event-private/event.json                        event-public/event.json   (every file's sha256)
    event-private/<track>/<dataset>/test.*.npy      event-public/<dataset>/test.<input>.npy
    event-private/sbi/<task>/calib_{theta,x}.npy    event-public/sbi/<task>/calib_x.npy

SBI: the scored part of an SBI submission that needs no secret is the C2ST on the 10 public observations, whose
reference posteriors are NUTS runs (the cards: 232 s per observation for galaxy-profile, 393 s for lightcurve, 2-core
CPU). Event mode scores what hidden labels add without new NUTS runs: SBC and TARP (``astrobench.metrics.sbi
.calibration``) on M secret simulations (x_j released, theta_j kept). C2ST on secret observations is left to a
follow-up (10 new NUTS references per task: about 40 min and 65 min on that CPU, estimated from the cards).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .data.events import ENV_VAR  # reading a release is the data layer's (data.load); making one is ours

SECRET_ENV = "ASTROBENCH_EVENT_SECRET"
MIN_SECRET = 16  # characters: a short secret could be guessed, and with it every test split regenerated
# galaxies seeds numpy's legacy global RNG with seed * 100 + attempt, which must stay below 2**32
SEED_RANGE = 2**25
# per track: dataset -> (arrays participants get, arrays the scorer reads besides the truth table)
TRACKS = {
    "generative": {"galaxies": ((), ("images",))},  # the test images are the reference: nothing is released
    "multimodal": {"galaxies": (("images", "spectra", "wavelength"), ())},
    "anomaly": {"galaxies-anomaly": (("images",), ()),
                "lightcurves": (("time", "flux", "flux_err", "band", "site", "mask"), ())},
    "superres": {"superres-galaxies": (("lr",), ("hr", "lr")), "superres-fields": (("lr",), ("hr", "lr")),
                 "superres-nbody": (("lr",), ("hr", "lr"))},
}
SBI_SIMS = {"fast": 200, "full": 500}  # secret calibration simulations per task (npe.py's calib_sims)
# the leaderboard's size policy (one definition): file and arrays unpacked, full generative is ~0.1 GB
MAX_SUBMISSION_BYTES = 256 << 20  # = leaderboard.MAX_MB
MAX_MEMBERS = 64  # = leaderboard.MAX_ARRAYS


def _errors():
    from .data.errors import DataError
    from .metrics import ScoreInputError

    return DataError, ScoreInputError


def derive_seed(secret: str, *labels: str) -> int:
    """An integer seed for one (track, dataset) from the secret: HMAC-SHA256, so seeds say nothing of each other."""
    digest = hmac.new(secret.encode(), "\0".join(labels).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % SEED_RANGE


def _mode(fast: bool) -> str:
    return "fast" if fast else "full"


# ---------------------------------------------------------------- what data.load reads


@contextmanager
def using(folder):
    """``ASTROBENCH_EVENT=folder`` for the block, restored after; yields a list that, once the block ends, holds
    (dataset, served from the event?) for every test split the block loaded."""
    from . import data
    from .metrics import generative

    saved, served = os.environ.get(ENV_VAR), []
    os.environ[ENV_VAR] = str(folder)
    generative.reference.cache_clear()  # cached per (dataset, mode), blind to which test split it was built from
    try:
        with data.watching() as loaded:
            yield served
    finally:
        served.extend((m["name"], m.get("kind") == "event") for m in loaded if m.get("split") == "test")
        generative.reference.cache_clear()
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved


def sbi_inputs(task: str, event=None):
    """The event's secret simulations of an SBI task, x_j (M, *x_shape), from the release at ``event`` (default:
    ``$ASTROBENCH_EVENT``). Submit ``calib_samples`` (S >= 100, M, dim): S posterior samples for each x_j."""
    import numpy as np

    DataError, _ = _errors()
    root = event or os.environ.get(ENV_VAR)
    path = Path(root or ".").expanduser() / "sbi" / task / "calib_x.npy"
    if not root or not path.is_file():
        raise DataError(f"no event simulations for SBI task {task!r} at {path}; expected ${ENV_VAR} (or event=) "
                        "to name a release made by `astrobench event release`")
    return np.load(path, allow_pickle=False)


# ---------------------------------------------------------------- organiser commands


def _secret(secret) -> str:
    from .baseline import BaselineError

    secret = secret if secret is not None else os.environ.get(SECRET_ENV)
    if not secret:
        raise BaselineError(f"event init: no secret; expected --secret S or ${SECRET_ENV}")
    if len(secret) < MIN_SECRET:
        raise BaselineError(f"event init: the secret has {len(secret)} characters; expected at least {MIN_SECRET} "
                            "(e.g. python -c 'import secrets; print(secrets.token_hex(16))')")
    return secret


def _new_folder(path, flag: str) -> Path:
    """An output folder that does not exist yet (or is empty) and can be created: checked before any work."""
    from .baseline import BaselineError, check_folder

    path = check_folder(path, flag)
    if path.exists() and any(path.iterdir()):
        raise BaselineError(f"{flag} {path}: exists and is not empty; expected a new folder (an event is made once)")
    return path


def _write_folder(folder: Path, arrays: dict, meta: dict) -> None:
    import numpy as np

    from .data.cache import write_manifest

    folder.mkdir(parents=True)
    for fname, value in arrays.items():
        np.save(folder / fname, value, allow_pickle=False)
    write_manifest(folder, meta)


def _truth_record(truth: dict):
    import numpy as np

    cols = list(truth)
    return np.rec.fromarrays([np.asarray(truth[c]) for c in cols], names=cols)


def init(secret, tracks, out, fast=None, progress: bool = True) -> Path:
    """Generate every track's secret test split (truth included) into the new folder ``out``; returns it."""
    import importlib.util

    from . import __version__, data
    from .baseline import BaselineError
    from .data.cache import atomic_dir

    secret = _secret(secret)
    tracks = list(dict.fromkeys(tracks or [*TRACKS, "sbi"]))
    unknown = [t for t in tracks if t not in (*TRACKS, "sbi")]
    if unknown:
        raise BaselineError(f"event init: unknown track {unknown[0]!r}; expected some of: "
                            f"{', '.join([*TRACKS, 'sbi'])}")
    if "sbi" in tracks and importlib.util.find_spec("jax") is None:
        raise BaselineError("event init: the sbi track needs jax; expected pip install 'astrobench[sbi]'")
    fast = data._resolve_fast(fast)
    out = _new_folder(out, "--out")
    with atomic_dir(out) as tmp:
        for track in tracks:
            if track == "sbi":
                _init_sbi(secret, tmp / "sbi", fast)
                continue
            for name in TRACKS[track]:
                spec = data.registry.get(name)
                seed = derive_seed(secret, track, name)
                seed += seed == spec.seed  # never the public split
                n = spec.sizes[_mode(fast)]["test"]
                test = dict(spec.generate({"test": n}, seed, progress))["test"]  # a dict, or (split, content) pairs
                arrays = {f"test.{k}.npy": (_truth_record(v) if k == "truth" else v) for k, v in test.items()}
                _write_folder(tmp / track / name, arrays,
                              {"event": "private", "track": track, "name": name, "version": spec.version,
                               "seed": seed, "fast": fast, "rows": {"test": n}, "config": spec.config()})
        (tmp / "event.json").write_text(json.dumps(
            {"kind": "private", "fast": fast, "tracks": tracks, "astrobench": __version__,
             "note": "organisers only: holds the test truth; participants get `astrobench event release`"}, indent=1))
    return out


def _init_sbi(secret: str, folder: Path, fast: bool) -> None:
    from .sim.sbi_tasks import get_task, names

    m = SBI_SIMS[_mode(fast)]
    for name in names():
        task = get_task(name)
        theta = task.sample_prior(m, seed=derive_seed(secret, "sbi", name, "theta"))
        x = task.simulate(theta, seed=derive_seed(secret, "sbi", name, "noise"))
        _write_folder(folder / name, {"calib_theta.npy": theta, "calib_x.npy": x},
                      {"event": "private", "track": "sbi", "name": name, "fast": fast, "rows": {"calib": m},
                       "param_names": list(task.param_names)})


def _read_event(path, kind: str = "private") -> dict:
    DataError, _ = _errors()
    path = Path(path).expanduser()
    try:
        ev = json.loads((path / "event.json").read_text())
    except (OSError, ValueError):
        ev = {}
    if ev.get("kind") != kind:
        made = "`astrobench event init`" if kind == "private" else "`astrobench event release`"
        raise DataError(f"{path}: not a {kind} event folder (no event.json of kind {kind!r}); expected one made by "
                        f"{made}")
    return ev


def verify(folder) -> None:
    """Every file named in ``folder``'s manifest has its sha256 (a DataError names the first that does not)."""
    from .data.cache import sha256_file

    DataError, _ = _errors()
    folder = Path(folder)
    for fname, sha in json.loads((folder / "manifest.json").read_text())["files"].items():
        if not (folder / fname).is_file() or sha256_file(folder / fname) != sha:
            raise DataError(f"{folder / fname}: missing or changed since the event was made; expected sha256 {sha}")


def _datasets(private: Path, ev: dict):
    """(track, dataset name, folder) of every dataset of a private event."""
    for track in ev["tracks"]:
        if track != "sbi":
            for name in TRACKS[track]:
                yield track, name, private / track / name


def release(private, out) -> Path:
    """Write what participants get: each track's test inputs without truth, and a manifest of sha256s."""
    from .data.cache import atomic_dir

    DataError, _ = _errors()
    private = Path(private).expanduser()
    ev = _read_event(private)
    out = _new_folder(out, "--out")
    owner = {}
    for track, name, _ in _datasets(private, ev):
        if TRACKS[track][name][0] and owner.setdefault(name, track) != track:
            raise DataError(f"{name} is released for both {owner[name]} and {track}; expected one track per dataset")
    with atomic_dir(out) as tmp:
        for track, name, folder in _datasets(private, ev):
            if TRACKS[track][name][0]:
                release_dataset(folder, tmp / name)
        if "sbi" in ev["tracks"]:
            for folder in sorted((private / "sbi").iterdir()):
                release_dataset(folder, tmp / "sbi" / folder.name)
        write_index(tmp, ev["fast"], ev["tracks"])
    return out


def write_index(folder: Path, fast: bool, tracks) -> None:
    """A release's event.json: the sha256 of every file under ``folder``, and how to use it."""
    from .data.cache import sha256_file

    files = {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / "event.json").write_text(json.dumps(
        {"kind": "public", "fast": fast, "tracks": list(tracks), "files": files,
         "usage": f"{ENV_VAR}=<this folder>: data.load(name, 'test') returns the event's test inputs; "
                  "SBI: astrobench.event.sbi_inputs(task)"}, indent=1))


def release_dataset(folder: Path, dest: Path) -> None:
    """Copy one private dataset's (or SBI task's) inputs to ``dest``, with a manifest that names no seed."""
    from .data.cache import write_manifest

    verify(folder)
    m = json.loads((folder / "manifest.json").read_text())
    inputs = ["calib_x.npy"] if m["track"] == "sbi" else [f"test.{k}.npy" for k in TRACKS[m["track"]][m["name"]][0]]
    dest.mkdir(parents=True)
    for fname in inputs:
        shutil.copyfile(folder / fname, dest / fname)
    write_manifest(dest, {k: v for k, v in m.items() if k not in ("files", "sha256", "seed")} | {"event": "public"})


# ---------------------------------------------------------------- scoring


def check_submission(path) -> Path:
    """Size caps before numpy reads a team's file: the file and its arrays unpacked (a zip bomb is small)."""
    import zipfile

    _, ScoreInputError = _errors()
    path = Path(path)
    if not path.is_file():
        raise ScoreInputError(f"{path}: no such file; expected a predictions .npz")
    if path.stat().st_size > MAX_SUBMISSION_BYTES:
        raise ScoreInputError(f"{path}: {path.stat().st_size} bytes; expected at most {MAX_SUBMISSION_BYTES}")
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise ScoreInputError(f"{path}: not a readable .npz file ({err}); expected one written by np.savez") from None
    unpacked = sum(m.file_size for m in members)
    if len(members) > MAX_MEMBERS or unpacked > MAX_SUBMISSION_BYTES:
        raise ScoreInputError(f"{path}: {len(members)} arrays, {unpacked} bytes unpacked; expected at most "
                              f"{MAX_MEMBERS} arrays and {MAX_SUBMISSION_BYTES} bytes")
    return path


def score_against(folder, target: str, predictions) -> dict:
    """Score ``predictions`` (a path or a dict of arrays) for ``target`` against the event data in ``folder``: a
    private event's track folder (``event-private/anomaly``) or a Codabench bundle's reference data."""
    from . import metrics

    _, ScoreInputError = _errors()
    folder = Path(folder)
    pred = predictions if isinstance(predictions, dict) else metrics.load_predictions(check_submission(predictions))
    track, _, task = target.partition(":")
    if track == "sbi":
        return _score_sbi(folder, task, pred)
    _check_names(folder, [task, str(pred.get("dataset", ""))])
    with using(folder) as served:
        result = metrics.score(target, pred)
    missed = sorted({name for name, hit in served if not hit})
    if missed or not served:
        raise ScoreInputError(f"the predictions were scored against the public {', '.join(missed) or 'data'}, not "
                              f"the event's test split; expected predictions for: {', '.join(_names(folder))}")
    return result


def _check_names(folder: Path, named) -> None:
    """Before scoring: a task or ``dataset`` key naming another dataset would score against public data."""
    from .data import registry

    _, ScoreInputError = _errors()
    for name in named:
        if name in registry.all_specs() and name not in _names(folder):
            raise ScoreInputError(f"{name!r} is not in this event; expected predictions for: "
                                  f"{', '.join(_names(folder))}")


def _names(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if (p / "manifest.json").is_file())


def _score_sbi(folder: Path, task: str, pred: dict) -> dict:
    import numpy as np

    from .metrics import require, sbi

    _, ScoreInputError = _errors()
    if not (folder / task / "calib_theta.npy").is_file():
        raise ScoreInputError(f"no SBI task {task!r} in this event; expected sbi:<task> with <task> one of: "
                              f"{', '.join(_names(folder))}")
    theta = np.load(folder / task / "calib_theta.npy", allow_pickle=False)
    samples = require(pred, "calib_samples", shape=(None, *theta.shape), kind="f", min_rows=100)
    return {"task": task, **sbi.calibration(samples, theta),
            "scope": "event: SBC and TARP on the event's secret simulations (C2ST needs new NUTS references)"}


def score(target: str, predictions, private) -> dict:
    """``astrobench event score``: the track's scorer against a private event's truth."""
    _, ScoreInputError = _errors()
    private = Path(private).expanduser()
    ev = _read_event(private)
    track = target.partition(":")[0]
    if track not in ev["tracks"]:
        raise ScoreInputError(f"track {track!r} is not in the event at {private}; expected one of: "
                              f"{', '.join(ev['tracks'])}")
    return score_against(private / track, target, predictions)


# ---------------------------------------------------------------- command line


def add_parser(sub) -> None:
    """``astrobench event init|release|score`` (called by ``astrobench.cli.build_parser``)."""
    p = sub.add_parser("event", help="hidden test labels: secret test splits, a release without truth, scoring")
    ev = p.add_subparsers(dest="event_command", required=True, parser_class=type(p))
    s = ev.add_parser("init", help="regenerate each track's test split from a secret (organisers only)")
    s.add_argument("--secret", help=f"at least {MIN_SECRET} characters (default: ${SECRET_ENV})")
    s.add_argument("--tracks", nargs="+", metavar="TRACK", help=f"default: {' '.join([*TRACKS, 'sbi'])}")
    s.add_argument("--out", default="event-private", help="new folder for the private split (default event-private)")
    s.add_argument("--fast", action="store_true", default=None, help="FAST-sized splits (default: FAST mode)")
    s.set_defaults(func=_cmd_init)
    s = ev.add_parser("release", help="write the test inputs without truth, with sha256s, for participants")
    s.add_argument("--private", default="event-private", help="folder made by `event init` (default event-private)")
    s.add_argument("--out", default="event-public", help="new folder to hand out (default event-public)")
    s.set_defaults(func=_cmd_release)
    s = ev.add_parser("score", help="score predictions against the private truth (same scorer as `score`)")
    s.add_argument("target", help="TRACK or TRACK:TASK")
    s.add_argument("predictions", help="predictions .npz")
    s.add_argument("--private", default="event-private", help="folder made by `event init` (default event-private)")
    s.add_argument("--json", help="also write the metrics to this file")
    s.set_defaults(func=_cmd_score)


def _cmd_init(args) -> int:
    out = init(args.secret, args.tracks, args.out, fast=args.fast)
    ev = json.loads((out / "event.json").read_text())
    print(f"private event ({_mode(ev['fast'])}, tracks: {', '.join(ev['tracks'])}) -> {out}; keep it and the secret "
          "away from participants; next: astrobench event release")
    return 0


def _cmd_release(args) -> int:
    out = release(args.private, args.out)
    print(f"release -> {out} ({len(json.loads((out / 'event.json').read_text())['files'])} files); participants "
          f"set {ENV_VAR}={out}")
    return 0


def _cmd_score(args) -> int:
    from .baseline import check_file, write_json

    if args.json:
        check_file(args.json, "--json")
    result = score(args.target, args.predictions, args.private)
    print(json.dumps(result, indent=1, default=float))
    if args.json:
        write_json(args.json, result)
    return 0
