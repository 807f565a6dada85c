"""``astrobench new TRACK DIR [--team NAME] [--template SRC]``: a team's own project for one track, and
``python -m astrobench.project pack``: the submission its ``make submit`` writes.

The project is rendered by copier from ``project_template/`` (shipped in the package), so a team pulls the organisers'
later fixes with ``copier update``. It holds the track's baseline script, vendored into ``pipeline/`` (copier merges
fixes to it, and a team may edit it too); ``train.py``, which runs that pipeline with ``model.build_model`` in its model
slot; tests, a notebook, a CI workflow and a Makefile. ``model.py`` is not a template file: it is written here, from
the MODEL SLOT section of the vendored baseline (the code between its banner and the next one, plus the imports and
module constants that code uses), so it always holds the current baseline model, and ``copier update`` never touches
it (it is the team's file).

Template source: ``--template`` if given (a git URL such as ``gh:OWNER/KIT``, or a local folder with a copier.yml).
Otherwise, inside a git clone of the kit, the clone at its last commit (the kit's root copier.yml points at the
template), so that the project records a template version that ``copier update`` can diff against; in a pip-installed
kit, the package's template folder (no history: ``copier recopy`` instead of ``update``). Bad input is one line,
exit 2, and nothing is written: the project is rendered into a temporary folder beside DIR and renamed into place.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from .baseline import BaselineError

TEMPLATE = Path(__file__).resolve().with_name("project_template")
# track -> its baseline script's stem (the script and its <stem>_*.py companions are vendored into pipeline/)
TRACKS = {"generative": "diffusion", "sbi": "npe", "multimodal": "contrastive", "anomaly": "autoencoder",
          "superres": "upsampler"}
# a team name that is also safe, unquoted or quoted, in the Makefile, TOML, YAML, JSON and a folder name
TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$")
TEAM_RULE = "letters, digits, spaces and . _ - (1 to 40 characters, starting with a letter or digit)"
BANNER = "# ================================================================ "
SLOT = BANNER + "MODEL SLOT"


class ProjectError(BaselineError):
    """Bad input to ``astrobench new`` or ``pack``: one line, exit 2."""


# ---------------------------------------------------------------- model.py from the baseline's MODEL SLOT


def slot_module(source: str, team: str, track: str, stem: str) -> str:
    """model.py's text: the MODEL SLOT section of a baseline script (``source``) as a module of its own, with the
    imports and module-level definitions (constants, helpers) that the section uses, copied in file order."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(SLOT)), None)
    if start is None:
        raise ProjectError(f"pipeline/{stem}.py has no '{SLOT}' banner; expected the kit's baseline script")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(BANNER)), len(lines))
    tree = ast.parse(source)
    section = [n for n in tree.body if start + 1 < n.lineno <= end]
    others = [n for n in tree.body if n not in section]
    needed = _free_names(section)
    copied, imports = set(), {}
    changed = True
    while changed:  # a copied constant or helper may use more module-level names
        changed = False
        for node in others:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
                keep = [a for a in node.names if future or _bound(a) in needed]
                if keep and len(keep) != len(imports.get(id(node), [])):
                    imports[id(node)] = keep
                    changed = True
            elif id(node) not in copied and _bindings(node) & needed:
                copied.add(id(node))
                needed |= _free_names([node])
                changed = True
    out = [f'"""The model of team {team} ({track} track).', "",
           f"The MODEL SLOT of the kit's baseline (pipeline/{stem}.py), copied here when the project was made.",
           "Change the model as you like; keep ``build_model``'s interface (its docstring). train.py puts this",
           '``build_model`` in the pipeline\'s slot. `copier update` never touches this file: it is yours."""', ""]
    group, last_end, emitted = 0, None, None
    for node in others:  # the imports, in the script's own sorted groups (a blank line between groups)
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if last_end is not None and node.lineno > last_end + 1:
            group += 1
        last_end = node.end_lineno
        if id(node) in imports:
            if emitted is not None and group != emitted:
                out.append("")
            extra = {"module": node.module, "level": node.level} if isinstance(node, ast.ImportFrom) else {}
            out.append(ast.unparse(type(node)(names=imports[id(node)], **extra)))
            emitted = group
    defs = [n for n in others if id(n) in copied]
    if defs:
        out += ["", f"# from pipeline/{stem}.py: what the model uses"]
        for node in defs:
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
            block = lines[first:node.end_lineno]
            out += ["", "", *block] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else block
    body = lines[start:end]
    while body and not body[-1].strip():
        body.pop()
    return "\n".join([*out, *([""] if not defs else ["", ""]), *body]) + "\n"  # isort's and pycodestyle's spacing


def _bound(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".")[0]


def _bindings(node: ast.stmt) -> set:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return {x.id for t in targets if t is not None for x in ast.walk(t) if isinstance(x, ast.Name)}


def _free_names(nodes) -> set:
    return {x.id for n in nodes for x in ast.walk(n) if isinstance(x, ast.Name)} - set().union(
        *(_bindings(n) for n in nodes))


# ---------------------------------------------------------------- astrobench new


def kit_checkout() -> Path | None:
    """The root of the kit's git clone this package runs from (an editable install), or None."""
    root = TEMPLATE.parents[2]  # shared/astrobench/project_template -> the repository
    return root if (root / "copier.yml").is_file() and (root / ".git").exists() else None


def template_source(template: str | None) -> tuple[str, str | None]:
    """(copier's source, the git revision to render or None for copier's default)."""
    if template:
        if re.match(r"^(gh:|gl:|git@|git\+|[a-z]+://)", template):
            return template, None  # a remote git template: copier clones it
        path = Path(template).expanduser()
        if not any((path / name).is_file() for name in ("copier.yml", "copier.yaml")):
            raise ProjectError(f"--template {template}: no copier.yml there; expected a clone or fork of the kit, or "
                               "its shared/astrobench/project_template folder")
        return str(path.resolve()), None
    root = kit_checkout()
    if root is not None:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:  # the last commit, not uncommitted edits: a version `copier update` can find again
            return str(root), head.stdout.strip()
    return str(TEMPLATE), None


def check_destination(dst: Path) -> Path:
    """DIR must be new or an empty folder, inside a folder we can write; returns its nearest existing ancestor."""
    if dst.exists() and not dst.is_dir():
        raise ProjectError(f"{dst}: is a file; expected a new or empty folder")
    if dst.is_dir() and any(dst.iterdir()):
        raise ProjectError(f"{dst}: exists and is not empty; expected a new or empty folder")
    parent = dst.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ProjectError(f"{dst}: {parent} is a file; expected a new or empty folder in a writable place")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ProjectError(f"{dst}: {parent} is not writable; expected a new or empty folder in a writable place")
    return parent


def new(track: str, dst, team: str | None = None, template: str | None = None, kit_repo: str | None = None,
        quiet: bool = True) -> tuple[Path, str]:
    """Make the project; returns (its folder, the template source and version it records)."""
    if track not in TRACKS:
        raise ProjectError(f"unknown track {track!r}; expected one of: {', '.join(TRACKS)}")
    dst = Path(dst).expanduser()
    team = dst.name if team is None else team
    if not TEAM.match(team):
        raise ProjectError(f"team name {team!r}: expected {TEAM_RULE} (--team NAME)")
    parent = check_destination(dst)
    src, ref = template_source(template)
    try:
        import copier
        from copier.errors import CopierError
        from plumbum import ProcessExecutionError
    except ImportError:
        raise ProjectError("copier is not installed; expected `pip install copier` (the kit's `project` extra)") \
            from None
    data = {"track": track, "team": team, **_kit_setting(kit_repo)}
    if ref is not None or (Path(src) / ".git").exists():  # a local git clone: `make install` installs from it offline
        data["kit_path"] = str(Path(src).resolve())
    work = Path(tempfile.mkdtemp(prefix=f".{dst.name}.new-", dir=parent))
    try:
        if Path(src) == TEMPLATE and any(p.is_symlink() for p in TEMPLATE.rglob("*")):
            # links into the track folders (a checkout without git): copier refuses links out of the template
            src = str(shutil.copytree(TEMPLATE, work / "template", ignore=shutil.ignore_patterns("__pycache__")))
        with warnings.catch_warnings():
            # an explicit --template CLONE with edits (copier includes them), a shallow CI checkout: notes, not errors
            warnings.filterwarnings("ignore", message="Dirty template changes")
            warnings.filterwarnings("ignore", message=".*is a shallow clone")
            worker = copier.run_copy(src, work / "project", data=data, vcs_ref=ref, defaults=True, unsafe=False,
                                     quiet=quiet)
        project = work / "project"
        script = project / "pipeline" / f"{TRACKS[track]}.py"
        origin = f"{worker.template.url}" + (f" @ {worker.template.commit}" if worker.template.commit else "")
        if not (project / "train.py").is_file() or not script.is_file():
            raise ProjectError(f"template {origin} made no train.py and pipeline/{script.name}; expected the kit's "
                               "team-project template (in a clone: committed; or pass --template)")
        (project / "model.py").write_text(slot_module(script.read_text(), team, track, TRACKS[track]))
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(project, dst)  # dst is new or an empty folder: nobody sees half a project
    except (CopierError, ProcessExecutionError, ValueError, OSError) as err:
        text = str(err).strip().splitlines()
        raise ProjectError(f"copier: {text[-1] if text else type(err).__name__}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dst, origin


def _kit_setting(kit_repo: str | None) -> dict:
    """The repository the project's pyproject.toml installs the kit from: the fork named in the kit's settings."""
    if kit_repo:
        return {"kit_repo": kit_repo}
    try:
        from .badges import setting

        s = setting()
        return {"kit_repo": s["repo"], "kit_branch": s["branch"]}
    except (OSError, KeyError, ValueError):  # a pip-installed kit: the template's default
        return {}


def add_parser(sub) -> None:
    """``astrobench new`` (called by ``astrobench.cli.build_parser``)."""
    s = sub.add_parser("new", help="make a team's own project for one track (copier: `copier update` pulls fixes)")
    s.add_argument("track", help=f"one of: {', '.join(TRACKS)}")
    s.add_argument("dir", help="the project's folder: new, or empty")
    s.add_argument("--team", help="the team's name (default: DIR's name)")
    s.add_argument("--template", help="copier template: a git URL such as gh:OWNER/KIT (the organisers' fork), or a "
                   "local clone (default: the kit this command runs from: its last commit in a git clone)")
    s.set_defaults(func=cmd_new)


def cmd_new(args) -> int:
    dst, origin = new(args.track, args.dir, team=args.team, template=args.template)
    print(f"{args.track} project for team {args.team or dst.name!r} -> {dst}  (template: {origin})")
    print(f"next: cd {dst} && git init && git add -A && git commit -m start && make install && make test")
    return 0


# ---------------------------------------------------------------- the submission


def slug(team: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", team.lower()).strip("-")


def pack(predictions, target: str, team: str, out="submission", method: str | None = None,
         members=None) -> tuple[Path, dict]:
    """Check ``predictions`` and write OUT/<board>/<team>/ (predictions.npz + team.json), the layout ``astrobench
    leaderboard`` reads; <board> is TARGET with ':' -> '-'. Returns (that folder, team.json). Public: checked with
    the scorer of ``astrobench score TARGET``. Under ``$ASTROBENCH_EVENT`` (a release, which holds no truth): checked
    to have been made on the release's test inputs (``made_on``), for ``astrobench event score`` to score. An
    existing team.json keeps its method and members unless new ones are given."""
    import json

    import numpy as np

    from . import metrics
    from .baseline import check_folder, write_json

    if not TEAM.match(team):
        raise ProjectError(f"--team {team!r}: expected {TEAM_RULE}")
    dest = check_folder(Path(out) / target.replace(":", "-") / slug(team), "--out")
    pred = metrics.load_predictions(predictions)
    made = metrics.made_on(pred)
    event = os.environ.get("ASTROBENCH_EVENT")
    if event:
        result = _check_event(pred, made, target, event)
    else:  # one-line ScoreInputError if invalid or made on another split
        result = metrics.score(target, pred)
    old = {}
    if (dest / "team.json").is_file():
        try:
            old = json.loads((dest / "team.json").read_text())
        except ValueError:
            old = {}
    members = [m.strip() for m in members.split(",") if m.strip()] if isinstance(members, str) else members
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".predictions.npz.tmp{os.getpid()}"
    shutil.copyfile(predictions, tmp)
    os.replace(tmp, dest / "predictions.npz")
    rows = len(next(v for k, v in pred.items() if k != metrics.MADE_ON and np.ndim(v) > 0))
    info = {"name": team, "members": members or old.get("members", []), "method": method or old.get("method", ""),
            "target": target, "split": made, "rows": rows,
            "metrics": {k: v for k, v in result.items() if isinstance(v, (int, float, str))}}
    if event:
        info["event"] = _release_id(event)
    write_json(dest / "team.json", info)
    return dest, info


def _check_event(pred: dict, made, target: str, event: str) -> dict:
    """An event submission: made on the release's test inputs (its truth is the organisers', who score it)."""
    from . import data

    track = target.partition(":")[0]
    if made is None or made.get("source") != "event":
        where = "an unknown split (no made_on record)" if made is None else data.describe(made)
        raise ProjectError(f"the predictions were made on {where}; expected predictions on the event's release "
                           f"{event} (run with ASTROBENCH_EVENT set: make submit EVENT={event})")
    if track == "sbi":
        return {}
    test = data.load(made["dataset"], made["split"], fast=made["fast"], progress=False)
    problem = data.mismatch(made, test.meta)
    if problem:
        raise ProjectError(f"{problem}; expected predictions made on this release's inputs")
    return {"event_rows": len(test)}


def _release_id(event: str) -> dict:
    """Which release a submission was made on: its folder name and the sha256 of its event.json."""
    from .data.cache import sha256_file

    index = Path(event).expanduser() / "event.json"
    return {"release": Path(event).name, "event_json_sha256": sha256_file(index) if index.is_file() else None}


def summary(dest: Path, info: dict) -> str:
    made = info.get("split") or {}
    split = (f"{'the event' if made.get('source') == 'event' else 'public'} {made.get('split', '?')} split of "
             f"{made.get('dataset', '?')}, {'FAST' if made.get('fast') else 'full'}") if made else "split not recorded"
    return (f"packed {info['target']} for team {info['name']!r}: {split}, {info['rows']} rows, method "
            f"{info['method'] or '(none)'!s}, members {', '.join(info['members']) or '(none)'} -> {dest}")


def main(argv=None) -> int:
    """``python -m astrobench.project pack PREDICTIONS --target T --team NAME [--out DIR] [--method TEXT]``."""
    from .baseline import ERRORS, _Parser

    p = _Parser(prog="astrobench.project", description="pack a submission (the team project's `make submit`)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("pack", help="check predictions with the scorer and write OUT/<board>/<team>/")
    s.add_argument("predictions", help="predictions .npz (a run's OUT/predictions.npz)")
    s.add_argument("--target", required=True, help="TRACK or TRACK:TASK, as for `astrobench score`")
    s.add_argument("--team", required=True, help="the team's name")
    s.add_argument("--out", default="submission", help="submission folder (default: submission)")
    s.add_argument("--method", help="one line on the method, for team.json")
    s.add_argument("--members", help="comma-separated names, for team.json")
    try:
        args = p.parse_args(argv)
        method, members = args.method, args.members
        if not (method and members) and sys.stdin.isatty():  # asked once; a script passes them as flags
            method = method or input("method (one line, for the leaderboard): ").strip()
            members = members or input("members (comma-separated): ").strip()
        dest, info = pack(args.predictions, args.target, args.team, args.out, method, members)
    except ERRORS as err:
        text = str(err).strip().splitlines()
        print(f"astrobench pack: error: {text[0] if text else type(err).__name__}", file=sys.stderr)
        return 2
    print(summary(dest, info))
    if not info["method"] or not info["members"]:
        print("note: team.json has no method or members; the leaderboard shows them: make submit METHOD='...' "
              "MEMBERS='ana, bo'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
