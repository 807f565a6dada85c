"""``astrobench codabench TRACK[:TASK] --out bundle.zip``: a Codabench v2 competition bundle for one track of an event.

The bundle (Codabench's format: ``competition.yaml`` with ``version: 2``, see docs.codabench.org, "Yaml Structure"
and "Competition Bundle Structure") holds

- ``scoring_program/``: ``score.py`` and a copy of this ``astrobench`` package, so the scorer is the one of
  ``astrobench event score`` (``astrobench.event.score_against``), pinned to the kit version that made the bundle;
  Codabench runs ``python3 /app/program/score.py /app/input /app/output`` with the submission unzipped in
  ``input/res`` and the reference data in ``input/ref``, and reads ``output/scores.json``;
- ``reference_data/``: the private truth of ``astrobench event init`` (only what the scorer reads);
- ``public_data/``: the released test inputs (``ASTROBENCH_EVENT=public_data``, as ``astrobench event release``);
- ``starting_kit/``: a sample submission made from the released inputs alone, its scores, and the track's notebook;
- ``competition.yaml``: one result-submission phase; the leaderboard's columns are the scorer's numeric keys (those
  the sample submission gets), the track's headline metric first (Codabench ranks by the column at index 0).

The docker image that runs ``score.py`` needs Python >= 3.10 (pyproject.toml's requires-python; the copied package
refuses an older one in one line) and the kit's dependencies for the track (``pip install 'astrobench[TRACK]'`` gives
them): ``--docker-image`` names it. The default, ``python:3.11-slim`` (the kit's development Python), is the base to
build that image from; CodaLab's own images stop at Python 3.9 (``codalab/codalab-legacy:py39``), too old for the kit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from .event import ENV_VAR, TRACKS
from .leaderboard import TASK_BOARDS
from .leaderboard import TRACKS as BOARDS

# the leaderboard's headline metric per track; SBI in event mode is scored by calibration alone (no C2ST: new
# observations would need new NUTS references), so its headline is SBC's
PRIMARY = ({name: board.columns[0].key for name, board in (BOARDS | TASK_BOARDS).items()}
           | {"sbi": "sbc_ks_pval_min"})
# smaller is better; every other column sorts descending (signed ones, flux_bias and tarp_atc, are best at 0: Codabench
# sorts by value, so they inform but never rank)
ASCENDING = re.compile(r"^(W_|floor_|pk_worst|flux_err|pdf_w1)")
HIDDEN = re.compile(r"^(n|n_\w+|retrieval_n|retrieval_chance_\w+|floor_\w+|W_floor|calibration_num_\w+)$")
DEFAULT_IMAGE = "python:3.11-slim"  # Python >= requires-python (shared/tests/test_codabench.py checks); no kit deps
SCORE_PY = '''#!/usr/bin/env python3
"""Codabench scoring program: astrobench's scorer on input/res/*.npz against input/ref; writes output/scores.json."""
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the astrobench copied into the bundle: the scorer the bundle was made with


def main(argv):
    inp, out = Path(argv[1] if len(argv) > 1 else "/app/input"), Path(argv[2] if len(argv) > 2 else "/app/output")
    cfg = json.loads((HERE / "scoring.json").read_text())
    os.environ["ASTROBENCH_FAST"] = "1" if cfg["fast"] else "0"  # the reference split's size, not the worker's
    try:
        from astrobench import codabench
    except ImportError as err:
        print(f"scoring: {err}; expected a docker image with astrobench's dependencies (pip install "
              f"'astrobench[{cfg['target'].split(':')[0]}]')", file=sys.stderr)
        return 2
    return codabench.run_scoring(cfg, inp / "res", inp / "ref", out)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def flatten(result: dict, prefix: str = "") -> dict:
    """The numeric scalars of a scorer's result, nested dicts joined with ``_`` (``recall_per_type_lensed_arc``)."""
    out = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}_"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def run_scoring(cfg: dict, res: Path, ref: Path, out: Path) -> int:
    """What ``score.py`` runs: one line on stderr and exit 2 for a submission that cannot be scored."""
    from .data.errors import DataError
    from .metrics import ScoreInputError

    found = sorted(res.glob("*.npz"))
    pred = res / "predictions.npz" if (res / "predictions.npz").is_file() else (found[0] if len(found) == 1 else None)
    if pred is None:
        print(f"rejected: {len(found)} .npz files in the submission; expected predictions.npz", file=sys.stderr)
        return 2
    try:
        from .event import score_against

        result = score_against(ref, cfg["target"], pred)
    except (ScoreInputError, DataError) as err:
        print(f"rejected: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    values = flatten(result)
    missing = [k for k in cfg["columns"] if k not in values]
    if missing:
        print(f"rejected: the scorer gave no {', '.join(missing)}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps({k: values[k] for k in cfg["columns"]}))
    (out / "result.json").write_text(json.dumps(result, indent=1, default=float))  # everything, for the team
    return 0


def columns(track: str, scores: dict) -> list:
    """Leaderboard columns: every key of ``scores`` (flattened), the headline metric of the track (or of a board
    with its own, ``leaderboard.TASK_BOARDS``) at index 0."""
    keys = sorted(scores, key=lambda k: k != PRIMARY.get(track))  # stable: the scorer's order otherwise
    return [{"title": k, "key": k, "index": i, "sorting": "asc" if ASCENDING.match(k) else "desc", "precision": 4,
             "hidden": bool(HIDDEN.match(k))} for i, k in enumerate(keys)]


# ---------------------------------------------------------------- the bundle


def _datasets(track: str, task: str) -> list:
    """Event datasets (or SBI tasks) one Codabench task scores against: one target per bundle."""
    from .baseline import BaselineError

    if track == "sbi":
        from .sim.sbi_tasks import names

        if task not in names():
            raise BaselineError(f"codabench: sbi needs a task; expected sbi:<task> with <task> one of: "
                                f"{', '.join(names())}")
        return [task]
    names = list(TRACKS[track])
    if track == "superres":  # one dataset per bundle: a submission's 'sr' is one of them
        want = task or "galaxies"
        want = want if want.startswith("superres-") else f"superres-{want}"
        if want not in names:
            raise BaselineError(f"codabench: unknown superres task {task!r}; expected one of: {', '.join(names)}")
        return [want]
    if track == "anomaly":  # one dataset per bundle: a submission's 'score' ranks one of them
        want = "galaxies-anomaly" if task in ("", "detect") else task
        if want not in names:
            raise BaselineError(f"codabench: unknown anomaly task {task!r}; expected anomaly or anomaly:lightcurves")
        return [want]
    return names


def _reference(private_track: Path, track: str, names: list, dest: Path, fast: bool) -> None:
    """The scorer's inputs only: truth tables and the arrays it reads (no seed), plus, for multimodal, the public
    train split's probe targets (the probes are fit on them)."""
    import numpy as np

    from . import data
    from .data.cache import write_manifest
    from .event import verify

    for name in names:
        src, dst = private_track / name, dest / name
        verify(src)
        dst.mkdir(parents=True)
        m = json.loads((src / "manifest.json").read_text())
        keep = ["calib_theta.npy"] if track == "sbi" else ["test.truth.npy", *(f"test.{k}.npy" for k in
                                                                                  TRACKS[track][name][1])]
        for fname in keep:
            shutil.copyfile(src / fname, dst / fname)
        if track == "multimodal":
            from .metrics.multimodal import PROPERTIES

            t = data.load(name, "train", fast=fast, progress=False).truth
            np.save(dst / "train.truth.npy", np.asarray(t[["id", *PROPERTIES]]), allow_pickle=False)
            m["rows"] = {**m["rows"], "train": len(t)}
        if track != "sbi":  # the released inputs' sha256s: the scorer checks that predictions were made on them
            m["inputs"] = {k: m["files"][f"test.{k}.npy"] for k in TRACKS[track][name][0]}
        write_manifest(dst, {k: v for k, v in m.items() if k not in ("files", "sha256", "seed")})


def _sample(track: str, public: Path, ref: Path, names: list, fast: bool, path: Path) -> None:
    """A valid submission made from the released inputs alone (never the truth): the starting kit's example."""
    import numpy as np

    from . import data
    from .baseline import save_npz, save_predictions
    from .event import sbi_inputs, using

    rng = np.random.default_rng(0)
    flat = lambda a: np.asarray(a, np.float32).reshape(len(a), -1)
    if track == "sbi":
        from .sim.sbi_tasks import get_task

        task = get_task(names[0])
        m = len(sbi_inputs(names[0], event=public))
        # prior draws: calibrated by construction (SBC ranks uniform), uninformative; a floor to beat
        return save_npz(path, calib_samples=np.stack([task.sample_prior(m, seed=s) for s in range(100)]))
    if track == "generative":  # as many public train images as the reference has rows: the real-data score
        n = json.loads((ref / names[0] / "manifest.json").read_text())["rows"]["test"]
        train = data.load(names[0], "train", fast=fast, progress=False)  # samples: made on no test input
        return save_predictions(path, {**train.meta, "split": "test"}, (), images=np.asarray(train.images[:n]))
    with using(public):
        test = data.load(names[0], "test", fast=fast, progress=False)
    if names[0] == "lightcurves":  # each curve's flux scatter: flares, supernovae and glints stand out
        inputs = ("time", "flux", "flux_err", "band", "site", "mask")
        scatter = np.nanstd(np.where(np.asarray(test.mask), np.asarray(test.flux), np.nan), axis=1)
        return save_predictions(path, test.meta, inputs, score=scatter)
    if track == "anomaly":  # peak over median absolute pixel: trails, cosmic rays and bleeds stand out
        a = np.abs(flat(test.images))
        return save_predictions(path, test.meta, ("images",), score=a.max(1) / np.maximum(np.median(a, 1), 1e-12))
    if track == "superres":
        from .metrics.superres import bicubic

        cfg = test.meta["config"]
        return save_predictions(path, test.meta, ("lr",), sr=bicubic(np.asarray(test.lr), cfg["factor"],
                                                                     cfg["extensive"]))
    train = data.load(names[0], "train", fast=fast, progress=False)  # multimodal: fixed random projections
    p_img = rng.standard_normal((flat(test.images[:1]).shape[1], 16)).astype(np.float32) / 64
    p_spec = rng.standard_normal((flat(test.spectra[:1]).shape[1], 16)).astype(np.float32) / 16
    return save_predictions(path, test.meta, ("images", "spectra"), image_emb=flat(test.images) @ p_img,
                            spectrum_emb=flat(test.spectra) @ p_spec, image_emb_train=flat(train.images) @ p_img,
                            spectrum_emb_train=flat(train.spectra) @ p_spec)


def _logo(path: Path, track: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 2), dpi=64)
    fig.text(0.5, 0.5, f"astrobench\n{track}", ha="center", va="center", fontsize=16)
    fig.savefig(path)
    plt.close(fig)


def _pages(root: Path, target: str, scores: dict, notebook: str, fast: bool) -> None:
    track = target.partition(":")[0]
    (root / "pages").mkdir()
    (root / "pages" / "overview.md").write_text(
        f"# {target}\n\nThe {track} track of the Astro x ML hackathon kit, scored on a test split the organisers "
        "regenerated from a secret seed: the inputs are public, the truth is not.\n\nStart from the starting kit "
        f"(`{notebook}`, the track's baseline notebook) and the kit's `{track}/README.md`.\n")
    (root / "pages" / "data.md").write_text(
        f"# Data\n\nTrain on the kit's public data (`astrobench.data.load(name, 'train')`). The test inputs are the "
        f"phase's public data: unzip it and set `{ENV_VAR}` to its folder; then `astrobench.data.load(name, 'test')` "
        f"returns them (SBI: `astrobench.event.sbi_inputs(task)`). Split size: {'FAST' if fast else 'full'}.\n")
    (root / "pages" / "evaluation.md").write_text(
        f"# Evaluation\n\nSubmit a zip holding `predictions.npz`, the file `astrobench score {target}` takes (keys "
        "and shapes: `astrobench.metrics." + track + "`). It is scored by the kit's own scorer against the hidden "
        f"truth. Leaderboard columns: {', '.join(f'`{k}`' for k in scores)}; ranked by "
        f"`{next(iter(scores))}`.\n")
    (root / "pages" / "terms.md").write_text(
        "# Terms\n\nSubmissions are predictions (.npz arrays), never code. Do not try to recover the hidden test "
        "truth. Data: CC-BY-4.0 (generated); code: BSD-3-Clause.\n")


def build(target: str, out, private="event-private", docker_image: str = DEFAULT_IMAGE, public_data: bool = True):
    """Write the bundle zip for ``target`` (TRACK or TRACK:TASK) from a private event; returns its scores summary.
    ``public_data=False`` leaves the released inputs out (full anomaly's are 0.5 GB): hand them out another way."""
    import yaml

    from .baseline import BaselineError, check_file
    from .event import _read_event, release_dataset, score_against, write_index

    track, _, task = target.partition(":")
    if track not in (*TRACKS, "sbi"):
        raise BaselineError(f"codabench: unknown track {track!r}; expected one of: {', '.join([*TRACKS, 'sbi'])}")
    out = check_file(out, "--out")
    if out.suffix != ".zip":
        raise BaselineError(f"--out {out}: expected a .zip file name")
    private = Path(private).expanduser()
    ev = _read_event(private)
    if track not in ev["tracks"]:
        raise BaselineError(f"codabench: track {track!r} is not in the event at {private}; expected one of: "
                            f"{', '.join(ev['tracks'])} (astrobench event init --tracks ...)")
    names = _datasets(track, task)
    target = (f"{track}:{names[0]}" if track in ("sbi", "superres") or names[0] == "lightcurves" else track)
    kit = Path(__file__).resolve().parents[2] / track
    notebooks = sorted(kit.glob("02_*.ipynb"))
    if not notebooks:
        raise BaselineError(f"codabench: no {track}/02_*.ipynb next to this astrobench; expected a clone of the kit")
    fast = ev["fast"]
    with tempfile.TemporaryDirectory(prefix=".codabench.", dir=out.parent) as tmp:
        root = Path(tmp) / "bundle"
        _reference(private / track, track, names, root / "reference_data", fast)
        public = Path(tmp) / "public_data"
        for name in names:
            release_dataset(private / track / name, public / ("sbi" if track == "sbi" else "") / name)
        write_index(public, fast, [track])
        kit_dir = root / "starting_kit"
        kit_dir.mkdir()
        sample = Path(tmp) / "predictions.npz"  # zipped into the kit: the one copy in the bundle
        _sample(track, public, root / "reference_data", names, fast, sample)
        if public_data:
            shutil.move(public, root / "public_data")
        result = score_against(root / "reference_data", target, sample)
        cols = columns(f"{track}-{names[0]}" if f"{track}-{names[0]}" in TASK_BOARDS else track, flatten(result))
        scores = {c["key"]: flatten(result)[c["key"]] for c in cols}
        shutil.copyfile(notebooks[0], kit_dir / notebooks[0].name)
        with zipfile.ZipFile(kit_dir / "sample_submission.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.write(sample, "predictions.npz")
        (kit_dir / "sample_scores.json").write_text(json.dumps(scores, indent=1))
        (kit_dir / "README.md").write_text(
            f"# Starting kit: {target}\n\n1. Unzip the public data; `export {ENV_VAR}=<that folder>`.\n"
            f"2. Train on the public train split (`{notebooks[0].name}`), predict on `data.load(name, 'test')`.\n"
            f"3. `np.savez('predictions.npz', ...)` with the keys `astrobench score {target}` takes; zip it; submit.\n"
            "\n`sample_submission.zip` is a valid submission made from the public inputs alone; "
            "`sample_scores.json` is what it scores.\n")
        prog = root / "scoring_program"
        shutil.copytree(Path(__file__).resolve().parent, prog / "astrobench",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (prog / "score.py").write_text(SCORE_PY)
        (prog / "metadata.yaml").write_text("command: python3 /app/program/score.py /app/input /app/output\n")
        from . import REQUIRES_PYTHON

        (prog / "scoring.json").write_text(json.dumps({"target": target, "fast": fast,
                                                       "columns": [c["key"] for c in cols],
                                                       "requires_python": ">=" + ".".join(map(str, REQUIRES_PYTHON)),
                                                       "docker_image": docker_image}, indent=1))
        _logo(root / "logo.png", track)
        _pages(root, target, scores, notebooks[0].name, fast)
        start = datetime.now(timezone.utc).strftime("%Y-%m-%d 00:00:00")
        competition = {
            "version": 2,
            "title": f"astrobench {target} (hidden test labels)",
            "description": f"Astro x ML hackathon kit, {target}: predictions scored against a secret test split.",
            "image": "logo.png",
            "registration_auto_approve": True,
            "docker_image": docker_image,
            "terms": "pages/terms.md",
            "pages": [{"title": t, "file": f"pages/{t.lower()}.md"} for t in ("Overview", "Data", "Evaluation")],
            "tasks": [{"index": 0, "name": target, "description": f"{target} on the event's secret test split",
                       "scoring_program": "scoring_program", "reference_data": "reference_data"}],
            "solutions": [{"index": 0, "path": "starting_kit/sample_submission.zip", "tasks": [0]}],
            "phases": [{"index": 0, "name": "Event", "description": "result submissions: a zip with predictions.npz",
                        "start": start, "max_submissions_per_day": 5, "execution_time_limit": 600,
                        "starting_kit": "starting_kit", **({"public_data": "public_data"} if public_data else {}),
                        "accepts_only_result_submissions": True, "tasks": [0]}],
            "leaderboards": [{"index": 0, "title": "Results", "key": "main", "columns": cols}],
        }
        (root / "competition.yaml").write_text(yaml.safe_dump(competition, sort_keys=False, allow_unicode=True))
        part = out.with_name(f".{out.name}.tmp{os.getpid()}")
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    z.write(p, str(p.relative_to(root)))
        os.replace(part, out)
    return {"target": target, "bundle": str(out), "columns": len(cols), "sample_scores": scores}


def add_parser(sub) -> None:
    """``astrobench codabench TRACK[:TASK] --out bundle.zip`` (called by ``astrobench.cli.build_parser``)."""
    s = sub.add_parser("codabench", help="a Codabench v2 competition bundle for one track of an event")
    s.add_argument("target", help="TRACK or TRACK:TASK (superres:fields, sbi:lightcurve)")
    s.add_argument("--out", required=True, help="bundle .zip to write")
    s.add_argument("--private", default="event-private", help="folder made by `astrobench event init`")
    s.add_argument("--docker-image", default=DEFAULT_IMAGE,
                   help=f"image with Python >= 3.10 and the track's dependencies that runs the scorer (default "
                        f"{DEFAULT_IMAGE}, to build it from)")
    s.add_argument("--no-public-data", action="store_true",
                   help="leave the released test inputs out of the bundle (hand them out another way)")
    s.set_defaults(func=_cmd)


def _cmd(args) -> int:
    summary = build(args.target, args.out, args.private, args.docker_image, public_data=not args.no_public_data)
    print(f"{summary['bundle']}: {summary['target']}, {summary['columns']} leaderboard columns; sample submission "
          + ", ".join(f"{k}={v:.4g}" for k, v in list(summary["sample_scores"].items())[:3]))
    return 0
