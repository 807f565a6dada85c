"""``astrobench leaderboard SUBMISSIONS --out SITE``: a static leaderboard site, one page per track.

Layout read::

    SUBMISSIONS/<board>/<team>/predictions.npz   what ``astrobench score`` takes
    SUBMISSIONS/<board>/<team>/team.json         {"name": "...", "members": [...], "method": "..."} (name required)
    BASELINES/<board or track>/predictions.npz   optional (--baselines): the baseline row, e.g. outputs/ from the
                                                 baseline scripts (``python anomaly/autoencoder.py`` -> outputs/anomaly)

``<board>`` is a track (``anomaly``) or a track and its task joined by ``-`` (``superres-fields``,
``sbi-lightcurve``): the scorer's ``track:task``. Each submission is scored by ``astrobench.metrics.score`` (the
numbers ``astrobench score`` prints) and gets a 95 % percentile bootstrap interval for every column: the test rows
are resampled (anomaly: stratified by label; SBI: the 10 observations for C2ST, the calibration simulations for
SBC/TARP; generative: the generated samples), and the metric is recomputed from per-row quantities of the same
scorer functions. Submissions are data, never code: files are size-capped and read with ``allow_pickle=False``, and
each is scored in its own process with a timeout, so a broken or hostile submission becomes one
``rejected: <reason>`` row and never breaks the board.
"""

from __future__ import annotations

import collections
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .baseline import BaselineError
from .data.cache import swap_in

TEMPLATES = Path(__file__).with_name("leaderboard_templates")
# the one submission size policy, shared with `astrobench event score` and the Codabench scoring program
MAX_MB = 256  # predictions.npz on disk and uncompressed (full-split generative/superres files are ~50 MB)
MAX_ARRAYS = 64
MAX_TEAM_JSON = 16_384  # bytes
N_BOOT = 1000
TIMEOUT = 600  # seconds per submission
BOARD_NAME = re.compile(r"^[a-z]+(-[A-Za-z0-9_-]+)?$")
BETTER = {"higher": "↑", "lower": "↓", "zero": "→0"}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str  # "higher", "lower" or "zero" (closest to 0); the primary column ranks the board


@dataclass(frozen=True)
class Track:
    columns: tuple  # the first is the primary metric
    about: str


TRACKS = {
    "generative": Track((Column("W_ratio", "W ratio", "lower"), Column("W_mean", "mean W₁", "lower")),
                        "mean W₁ distance of 12 morphology statistics to the test split, over the real-vs-real "
                        "floor (1 = as close as two halves of real data)"),
    "sbi": Track((Column("c2st_mean", "C2ST", "lower"), Column("tarp_atc", "TARP ATC", "zero"),
                  Column("sbc_ks_pval_min", "SBC KS p (min)", "higher")),
                 "C2ST against the reference posteriors, mean over the 10 observations (0.5 = indistinguishable); "
                 "TARP and SBC when calibration samples are submitted"),
    "multimodal": Track((Column("zeroshot_r2_z_image", "R²(z) image", "higher"),
                         Column("zeroshot_r2_z_spectrum", "R²(z) spectrum", "higher"),
                         Column("retrieval_image_to_spectrum_top1", "image→spectrum top-1", "higher")),
                        "zero-shot 64-NN probe R² of redshift from the image embeddings; spectrum embeddings; "
                        "cross-modal retrieval"),
    "anomaly": Track((Column("auroc", "AUROC", "higher"), Column("auprc", "AUPRC", "higher"),
                      Column("precision_at_1pct", "precision@1 %", "higher")),
                     "anomalies ranked first: area under the ROC curve, average precision, precision in the top 1 %"),
    "superres": Track((Column("psnr", "PSNR (dB)", "higher"), Column("ssim", "SSIM", "higher"),
                       Column("pk_worst_half_nyquist", "worst |P(k) ratio − 1|", "lower")),
                      "×4 super-resolution of the test split: PSNR, SSIM, power-spectrum fidelity up to half the "
                      "HR Nyquist frequency"),
}

# boards whose task ranks on other columns than its track's: the N-body maps are judged by their statistics (an
# upsampler that smooths wins on PSNR and loses the small-scale power and the halos the task is about)
TASK_BOARDS = {
    "superres-nbody": Track((Column("pk_worst_half_nyquist", "worst |P(k) ratio − 1|", "lower"),
                             Column("peaks_worst", "worst peak-count error", "lower"),
                             Column("rk_min_half_nyquist", "min r(k)", "higher"),
                             Column("psnr", "PSNR (dB)", "higher")),
                            "×4 super-resolution of N-body density maps: power spectrum up to half the HR Nyquist "
                            "frequency, counts of density peaks (a halo proxy), cross-correlation with the true HR"),
}


class Rejected(Exception):
    """A submission that cannot be ranked; its message is the row's one-line reason."""


class LeaderboardError(BaselineError):
    """Bad command-line input: one line, exit 2 (a BaselineError, so the CLI reports it like the others)."""


# ---------------------------------------------------------------- reading what a team sent


def check_npz(path: Path, max_mb: float = MAX_MB) -> None:
    """Reject before loading anything: links, non-files, oversized files, zip bombs, too many arrays."""
    if path.is_symlink():
        raise Rejected(f"{path.name} is a symbolic link; expected a regular file")
    if not path.is_file():
        raise Rejected(f"no {path.name}; expected <board>/<team>/predictions.npz")
    limit = max_mb * 2**20
    if path.stat().st_size > limit:
        raise Rejected(f"{path.name} is {path.stat().st_size / 2**20:.0f} MB; expected at most {max_mb:g} MB")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise Rejected(f"{path.name} is not an .npz archive ({err}); expected one written by np.savez") from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ARRAYS:
            raise Rejected(f"{path.name} holds {len(members)} arrays; expected at most {MAX_ARRAYS}")
        size = sum(m.file_size for m in members)  # uncompressed; zipfile never reads past a member's file_size
        if size > limit:
            raise Rejected(f"{path.name} unpacks to {size / 2**20:.0f} MB; expected at most {max_mb:g} MB")
        for m in members:  # each array's header: what numpy would allocate, before it allocates it
            shape, dtype = _npy_header(zf, m)
            if dtype.hasobject:
                raise Rejected(f"{m.filename!r} holds Python objects; expected numeric arrays (no pickles)")
            if math.prod(shape) * dtype.itemsize > limit:
                raise Rejected(f"{m.filename!r} declares shape {shape} of {dtype}: over {max_mb:g} MB")


def _npy_header(zf: zipfile.ZipFile, member: zipfile.ZipInfo):
    """(shape, dtype) from one .npy member's header, read through numpy's own format functions."""
    fmt = np.lib.format
    try:
        with zf.open(member) as fh:
            version = fmt.read_magic(fh)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"npy format version {version}")
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(fh)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise Rejected(f"{member.filename!r} is not a .npy array ({err}); expected np.savez output") from None
    return shape, dtype


def read_team(folder: Path) -> dict:
    path = folder / "team.json"
    if path.is_symlink() or not path.is_file():
        raise Rejected("no team.json; expected a file like {\"name\": \"Team name\"}")
    if path.stat().st_size > MAX_TEAM_JSON:
        raise Rejected(f"team.json is larger than {MAX_TEAM_JSON} bytes; expected a small file")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise Rejected(f"team.json is not valid JSON ({err})") from None
    if not isinstance(info, dict) or not isinstance(info.get("name"), str) or not info["name"].strip():
        raise Rejected("team.json has no \"name\"; expected {\"name\": \"Team name\", \"method\": \"...\"}")
    members = info.get("members", [])
    return {"name": info["name"].strip()[:80], "method": str(info.get("method", ""))[:300],
            "members": [str(m)[:80] for m in members][:20] if isinstance(members, list) else []}


# ---------------------------------------------------------------- scoring, per-row quantities, bootstrap


@dataclass
class Resample:
    """A set of rows resampled together and the columns recomputed from them; strata keep their sizes."""

    n: int
    stat: object  # callable: index array -> {column key: value}
    strata: np.ndarray | None = None


def _anomaly(target, pred):
    from .metrics import anomaly as mod
    from .metrics import score

    result = score(target, pred)
    task = target.partition(":")[2] or None
    dataset = task if task in mod.REAL_ANOMALIES else str(np.asarray(pred.get("dataset", mod.DATASET)))
    labels, _ = mod.truth(dataset, result["fast"])
    s = np.asarray(pred["score"], np.float64)
    keys = [c.key for c in TRACKS["anomaly"].columns]
    stat = lambda i: {k: v for k, v in mod.anomaly_metrics(s[i], labels[i]).items() if k in keys}
    scope = f"{dataset} test split, {'FAST' if result['fast'] else 'full'} ({len(s)} rows)"
    return result, scope, [Resample(len(s), stat, strata=labels)]


def _superres(target, pred):
    from . import data
    from .metrics import score
    from .metrics import superres as mod

    result = score(target, pred)
    scope = f"{result['dataset']} test split, {'FAST' if result['fast'] else 'full'} ({result['n']} rows)"
    if result["dataset"] == "superres-nbody":  # its numbers average over a team's draws: no per-row intervals yet
        return result, scope, []
    test = data.load(result["dataset"], "test", fast=result["fast"], progress=False)
    hr = np.asarray(test.hr if "hr" in test.arrays else test.images)
    sr = np.asarray(pred["sr"]).astype(np.float32)  # as the scorer passes it
    psnr, ssim = mod.psnr(hr, sr), mod.ssim(hr, sr)
    # per-image power spectra: their mean over any rows is power_spectrum() of those rows
    k = mod.power_spectrum(hr[:1])[0]
    p_hr, p_sr = (np.stack([mod.power_spectrum(x[j:j + 1])[1] for j in range(len(x))]) for x in (hr, sr))
    stat = lambda i: {"psnr": float(np.mean(psnr[i])), "ssim": float(np.mean(ssim[i])),
                      "pk_worst_half_nyquist": mod.worst_ratio(k, p_sr[i].mean(0) / p_hr[i].mean(0), 0.25)}
    return result, scope, [Resample(len(sr), stat)]


def _multimodal(target, pred):
    from .metrics import multimodal as mod
    from .metrics import score

    result = score(target, pred)
    arrays, fast = mod.validate(pred)
    y_train, y_test = (mod._truth(mod.DATASET, fast, split)[0][:, 0] for split in ("train", "test"))  # z
    z = {m: mod.knn_predict(arrays[f"{m}_emb_train"], y_train, arrays[f"{m}_emb"]) for m in ("image", "spectrum")}
    n = min(mod.RETRIEVAL_N, len(y_test))
    hit = mod.retrieval_ranks(*(arrays[f"{m}_emb"][:n].astype(np.float64) for m in ("image", "spectrum"))) < 1

    def stat(i):
        out = {f"zeroshot_r2_z_{m}": float(mod._r2(y_test[i], z[m][i])[0]) for m in z}
        return out | {"retrieval_image_to_spectrum_top1": float(np.mean(hit[i[i < n]]))}  # keys stay fixed

    scope = f"{mod.DATASET} test split, {'FAST' if fast else 'full'} ({len(y_test)} rows)"
    return result, scope, [Resample(len(y_test), stat)]


def _sbi(target, pred):
    from .metrics import score

    result = score(target, pred)
    groups = []
    if "c2st" in result:  # a task without reference posteriors is scored by its calibration alone
        c2st = np.asarray(result["c2st"])  # per observation (rounded to 1e-4 by the scorer)
        groups.append(Resample(len(c2st), lambda i: {"c2st_mean": float(np.mean(c2st[i]))}))
    if "tarp_atc" in result:
        import torch
        from sbi.diagnostics import check_tarp
        from sbi.diagnostics.sbc import check_uniformity_frequentist

        from .metrics.sbi import tarp_curve

        cs, theta = np.asarray(pred["calib_samples"]), np.asarray(pred["calib_theta"])
        ranks = torch.as_tensor((cs < theta[None]).sum(0), dtype=torch.float32)  # as metrics.sbi.calibration

        def calib(i):
            atc = check_tarp(*tarp_curve(cs[:, i], theta[i]))[0]
            return {"tarp_atc": float(atc), "sbc_ks_pval_min": float(check_uniformity_frequentist(
                ranks[torch.as_tensor(i)], len(cs)).min())}

        groups.append(Resample(len(theta), calib))
    return result, f"task {result['task']}", groups


def _generative(target, pred):
    from .metrics import generative as mod

    task = target.partition(":")[2] or None
    # the module's scorer directly (metrics.score dispatches to it), for the per-sample statistics it returns
    result, gen = mod.score(pred, task=task, return_stats=True)
    dataset, fast = result["reference"].split(" test (")[0], result["reference"].endswith("(FAST)")
    ref = mod.reference(dataset, fast)[0]  # cached by the scorer's call

    def stat(i):
        w = float(np.mean(list(mod.wasserstein({s: v[i] for s, v in gen.items()}, ref).values())))
        return {"W_mean": w, "W_ratio": w / result["W_floor"]}

    return result, result["reference"], [Resample(result["n_samples"], stat)]


PER_ROW = {"anomaly": _anomaly, "superres": _superres, "multimodal": _multimodal, "sbi": _sbi,
           "generative": _generative}


def bootstrap(groups, n_boot: int, seed: int = 0) -> dict:
    """95 % percentile intervals {key: [lo, hi]} over ``n_boot`` resamples of each group's rows."""
    rng = np.random.default_rng(seed)
    draws = collections.defaultdict(list)
    for g in groups:
        strata = [np.arange(g.n)] if g.strata is None else [np.flatnonzero(g.strata == s) for s in np.unique(g.strata)]
        for _ in range(n_boot):
            idx = np.sort(np.concatenate([rng.choice(rows, len(rows)) for rows in strata]))
            for key, value in g.stat(idx).items():
                draws[key].append(value)
    out = {}
    for key, values in draws.items():
        values = np.asarray(values, np.float64)
        if np.all(np.isfinite(values)):  # e.g. PSNR is +inf for an exact copy: no interval
            out[key] = [float(v) for v in np.percentile(values, [2.5, 97.5])]
    return out


def score_one(target: str, path, n_boot: int = N_BOOT, seed: int = 0, max_mb: float = MAX_MB, event=None) -> dict:
    """Score one predictions file with the track's scorer, plus bootstrap intervals; raises on bad input.

    ``event``: a private event's track folder (``astrobench event init``): score against its hidden test split."""
    from .metrics import load_predictions

    path = Path(path)
    check_npz(path, max_mb)
    pred = load_predictions(path)  # allow_pickle=False
    if event:
        from .event import using

        with using(event) as served:  # $ASTROBENCH_EVENT for this scoring: data.load serves the hidden split
            result, scope, groups = PER_ROW[target.partition(":")[0]](target, pred)
            intervals = bootstrap(groups, n_boot, seed)
        public = sorted({name for name, hit in served if not hit})
        if public or not served:
            raise Rejected(f"scored against the public {', '.join(public) or 'data'}, not the event's hidden test "
                           "split; expected predictions for the event's test inputs")
        scope += " (the event's hidden labels)"
    else:
        result, scope, groups = PER_ROW[target.partition(":")[0]](target, pred)
        intervals = bootstrap(groups, n_boot, seed)
    flat = {k: v for k, v in result.items() if isinstance(v, (int, float, bool, str))}
    return {"metrics": {k: float(v) for k, v in flat.items() if isinstance(v, (int, float))
                        and not isinstance(v, bool)}, "intervals": intervals, "scope": scope, "result": flat}


def _one_line(err: BaseException) -> str:
    from .metrics import ScoreInputError

    text = (str(err).strip().splitlines() or [""])[0]
    text = text if isinstance(err, (Rejected, ScoreInputError)) else f"scorer failed: {type(err).__name__}: {text}"
    return text[:300]


def run_one(target: str, path, n_boot: int, seed: int, max_mb: float, timeout: float | None, event=None) -> dict:
    """``score_one`` that never raises: {"error": reason} or its result. With a timeout, in a child process."""
    try:
        check_npz(Path(path), max_mb)  # cheap checks first, here, with no process to start
        if timeout is None:
            return score_one(target, path, n_boot, seed, max_mb, event)
    except Exception as err:  # any failure of one submission is that submission's row, not the board's
        return {"error": _one_line(err)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", __name__, target, str(path), str(out), str(n_boot), str(seed), str(max_mb),
               str(event or "")]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return {"error": f"scoring took longer than {timeout:g} s (the per-submission timeout)"}
        if out.is_file():
            return json.loads(out.read_text())
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return {"error": f"the scoring process ended with exit code {proc.returncode} ({last})"}


def _worker(argv) -> int:
    """Child process: score one file and write {"error"} or the result as JSON (our own data, no pickle)."""
    target, path, out, n_boot, seed, max_mb, event = argv
    try:
        result = score_one(target, path, int(n_boot), int(seed), float(max_mb), event or None)
    except Exception as err:
        result = {"error": _one_line(err)}
    Path(out).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------- boards


@dataclass
class Board:
    name: str
    target: str = ""
    track: Track | None = None
    error: str = ""
    rows: list = field(default_factory=list)
    references: list = field(default_factory=list)
    scope: str = ""


def _sort_key(track: Track, value: float) -> float:
    better = track.columns[0].better
    return -value if better == "higher" else abs(value) if better == "zero" else value


def _references(board: Board) -> list:
    """The track's floor and ceiling lines: (label, value) for the primary metric."""
    ok = [r for r in board.rows if r["status"] == "ok"]
    track = board.target.partition(":")[0]
    if track == "anomaly":
        return [("random ranking", 0.5), ("perfect ranking", 1.0)]
    if track == "sbi":
        return [("ideal: indistinguishable from the reference", 0.5)]
    if track == "generative":
        return [("real-vs-real floor", 1.0)]
    if track == "superres" and ok:
        return [("bicubic upsampling", ok[0]["result"]["psnr_bicubic"])]
    if track == "multimodal":
        sup = [r["result"]["supervised_r2_z"] for r in ok if "supervised_r2_z" in r["result"]]
        return [("predicting the mean redshift", 0.0), ("supervised CNN" if sup else "perfect", sup[0] if sup else 1.0)]
    return []


def _finish(board: Board) -> None:
    """One scope per board (the baseline's, else the commonest), then the ranking by the primary metric."""
    ok = [r for r in board.rows if r["status"] == "ok"]
    base = [r["scope"] for r in ok if r["baseline"]]
    counts = collections.Counter(r["scope"] for r in ok)
    board.scope = base[0] if base else (min(counts, key=lambda s: (-counts[s], s)) if counts else "")
    for r in ok:
        if r["scope"] != board.scope:
            r.update(status="rejected", reason=f"scored against the {r['scope']}; this board ranks the "
                                               f"{board.scope}")
    primary = board.track.columns[0].key
    for r in board.rows:
        if r["status"] == "ok" and not math.isfinite(r["metrics"].get(primary, math.nan)):
            r.update(status="rejected", reason=f"{primary} is not a finite number")
    ok = sorted((r for r in board.rows if r["status"] == "ok"),
                key=lambda r: (_sort_key(board.track, r["metrics"][primary]), r["baseline"], r["team"]))
    rank, last = 0, None
    for n, r in enumerate(r for r in ok if not r["baseline"]):
        value = r["metrics"][primary]
        rank = rank if value == last else n + 1  # ties share a rank (1, 2, 2, 4)
        r["rank"], last = rank, value
    bad = sorted((r for r in board.rows if r["status"] != "ok"), key=lambda r: r["team"])
    board.rows = ok + bad
    board.references = _references(board)


def collect(submissions: Path, baselines: Path | None, n_boot: int, seed: int, max_mb: float,
            timeout: float | None, progress=None, private: Path | None = None) -> list:
    from .metrics import tracks

    boards = []
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        board = Board(folder.name)
        boards.append(board)
        track, _, task = folder.name.partition("-")
        if folder.is_symlink() or not BOARD_NAME.match(folder.name) or track not in TRACKS or track not in tracks():
            board.error = (f"folder {folder.name!r} is not a board; expected a track ({', '.join(TRACKS)}) or "
                           "<track>-<task>")
            continue
        board.target, board.track = f"{track}:{task}" if task else track, TASK_BOARDS.get(folder.name, TRACKS[track])
        event = None if private is None else private / track
        if event is not None and (track == "sbi" or not event.is_dir()):
            board.error = (f"track {track} is not in the event at {private}" if track != "sbi" else
                           "SBI in event mode is scored by `astrobench event score` (SBC and TARP on the event's "
                           "secret simulations), not ranked here yet")
            continue
        entries = []  # (folder, team.json or None, the reason it is already rejected)
        if baselines is not None:
            found = [baselines / n for n in (folder.name, track) if (baselines / n / "predictions.npz").exists()]
            entries += [(found[0], None, "")] if found else []
        for team in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                if team.is_symlink():
                    raise Rejected("the team folder is a symbolic link; expected a folder")
                entries.append((team, read_team(team), ""))
            except Rejected as err:
                entries.append((team, {"name": team.name}, str(err)))
        for path, info, error in entries:
            row = {"team": "baseline", "name": "baseline", "method": f"the kit's {track} baseline", "members": [],
                   "baseline": info is None, "status": "ok", "reason": "", "rank": None, "metrics": {},
                   "intervals": {}, "scope": "", "result": {}}
            if info is not None:
                row.update({"team": path.name, "method": "", **info})
            if progress:
                progress(f"{board.name}/{row['team']}")
            out = {"error": error} if error else run_one(board.target, path / "predictions.npz", n_boot, seed,
                                                         max_mb, timeout, event)
            if "error" in out:
                row.update(status="rejected", reason=out["error"])
            else:
                row.update(metrics=out["metrics"], intervals=out["intervals"], scope=out["scope"],
                           result=out["result"])
            board.rows.append(row)
        _finish(board)
    return boards


# ---------------------------------------------------------------- the site


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–" if value is None else str(value)
    return f"{value:.4g}"


def plot(board: Board, path: Path) -> None:
    """The primary metric of every ranked row with its interval, and the track's floor/ceiling lines."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    col = board.track.columns[0]
    ok = [r for r in board.rows if r["status"] == "ok"]
    fig = Figure(figsize=(7, 1.6 + 0.4 * max(len(ok), 1)), layout="constrained")
    ax = fig.add_subplot()
    for y, r in enumerate(ok):
        v = r["metrics"][col.key]
        lo, hi = r["intervals"].get(col.key, (v, v))
        ax.errorbar([v], [y], xerr=[[max(v - lo, 0)], [max(hi - v, 0)]], fmt="o", capsize=3,
                    color="tab:orange" if r["baseline"] else "tab:blue")
    for (label, value), style in zip(board.references, ("--", ":", "-.")):
        ax.axvline(value, color="grey", linestyle=style, label=f"{label} ({_fmt(value)})")
    names = [r["name"] if len(r["name"]) <= 28 else r["name"][:27] + "…" for r in ok]
    ax.set_yticks(range(len(ok)), [n.replace("$", r"\$") for n in names])  # a name is text, never mathtext
    ax.set_ylim(len(ok) - 0.5 if ok else 0.5, -0.5)
    if not ok:
        ax.text(0.5, 0.5, "no ranked submissions yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"{col.label}, {BETTER[col.better]} better (bars: 95 % intervals)")
    ax.set_title(f"{board.name}: {col.label}")
    if board.references:
        ax.legend(loc="best", fontsize="small")
    fig.savefig(path, dpi=100)


def render(boards: list, out: Path, n_boot: int, seed: int) -> None:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,  # team names are input
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    common = {"better": BETTER, "n_boot": n_boot, "seed": seed,
              "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    shutil.copy(TEMPLATES / "style.css", out / "style.css")
    for board in boards:
        if board.error:
            continue
        plot(board, out / f"{board.name}.png")
        (out / f"{board.name}.html").write_text(env.get_template("track.html").render(board=board, **common),
                                                encoding="utf-8")
    (out / "index.html").write_text(env.get_template("index.html").render(boards=boards, **common),
                                    encoding="utf-8")
    results = {b.name: {"target": b.target, "error": b.error, "scope": b.scope, "references": b.references,
                        "rows": b.rows} for b in boards}
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


def _check_out(out: Path) -> None:
    """--out: a new folder or an earlier site (replaced whole): never an unrelated folder."""
    if out.exists() and not out.is_dir():
        raise LeaderboardError(f"--out {out}: is a file; expected a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / "results.json").is_file():
        raise LeaderboardError(f"--out {out}: a non-empty folder that is not a leaderboard site; expected a new "
                               "folder or an earlier site (which is replaced)")
    from .data.cache import unwritable

    problem = unwritable(out.resolve().parent)
    if problem:
        raise LeaderboardError(f"--out {out}: {problem}; expected a writable place")


def build(submissions, out, *, baselines=None, n_boot: int = N_BOOT, seed: int = 0, max_mb: float = MAX_MB,
          timeout: float | None = TIMEOUT, progress=None, private=None) -> list:
    """Score every submission and write the site to ``out`` atomically (built beside it, then swapped in).

    ``private``: an event folder from ``astrobench event init``: rank against its hidden test labels."""
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise LeaderboardError(f"{submissions}: no such folder; expected SUBMISSIONS/<track>/<team>/predictions.npz")
    if baselines is not None and not Path(baselines).is_dir():
        raise LeaderboardError(f"--baselines {baselines}: no such folder; expected BASELINES/<track>/predictions.npz")
    if n_boot < 0 or (timeout is not None and timeout <= 0) or max_mb <= 0:
        raise LeaderboardError("expected --bootstrap >= 0, --timeout > 0 and --max-mb > 0")
    if private is not None:
        private = Path(private).expanduser().resolve()
        try:
            kind = json.loads((private / "event.json").read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind != "private":
            raise LeaderboardError(f"--private {private}: not a private event folder; expected one made by "
                                   "`astrobench event init`")
    _check_out(out)
    boards = collect(submissions, None if baselines is None else Path(baselines), n_boot, seed, max_mb, timeout,
                     progress, private)
    out.resolve().parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    try:
        render(boards, tmp, n_boot, seed)
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return boards


# ---------------------------------------------------------------- command line (astrobench leaderboard)


def add_parser(sub) -> None:
    s = sub.add_parser("leaderboard", help="score a folder of submissions into a static leaderboard site")
    s.add_argument("submissions", help="folder of <track>/<team>/predictions.npz + team.json")
    s.add_argument("--out", required=True, help="site folder to write (a new folder or an earlier site)")
    s.add_argument("--baselines", help="folder of <track>/predictions.npz for the baseline rows (e.g. outputs)")
    s.add_argument("--private", metavar="EVENT", help="rank against an event's hidden test labels: the folder "
                   "written by `astrobench event init`")
    s.add_argument("--bootstrap", type=int, default=N_BOOT, metavar="N", help=f"resamples (default {N_BOOT})")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    s.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds per submission (default {TIMEOUT})")
    s.add_argument("--max-mb", type=float, default=MAX_MB, help=f"size cap per predictions file (default {MAX_MB})")
    s.add_argument("--check", action="append", default=[], metavar="BOARD/TEAM",
                   help="exit 1 if this submission is rejected (a pull request's check); repeatable")
    s.set_defaults(func=cmd_leaderboard)


def cmd_leaderboard(args) -> int:
    checks = [c.strip("/") for c in args.check]
    for c in checks:
        if not (Path(args.submissions) / c).is_dir() or c.count("/") != 1:
            raise LeaderboardError(f"--check {c}: no such submission; expected BOARD/TEAM under {args.submissions}")
    boards = build(args.submissions, args.out, baselines=args.baselines, n_boot=args.bootstrap, seed=args.seed,
                   max_mb=args.max_mb, timeout=args.timeout, private=args.private,
                   progress=lambda name: print(f"scoring {name}", file=sys.stderr, flush=True))
    failed = []
    for b in boards:
        if b.error:
            print(f"{b.name}: rejected: {b.error}")
        for r in b.rows:
            state = f"rank {r['rank']}" if r["rank"] else ("baseline" if r["status"] == "ok" else "")
            value = r["metrics"].get(b.track.columns[0].key)
            print(f"{b.name}/{r['team']}: " + (f"{state} {b.track.columns[0].key}={_fmt(value)}"
                                               if r["status"] == "ok" else f"rejected: {r['reason']}"))
            if f"{b.name}/{r['team']}" in checks and r["status"] != "ok":
                failed.append(f"{b.name}/{r['team']}")
    print(f"site: {Path(args.out) / 'index.html'}")
    if failed:
        print(f"astrobench: rejected: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":  # the per-submission child process of run_one
    sys.exit(_worker(sys.argv[1:]))
