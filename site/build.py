"""Build the kit's website: `make site`, or `python site/build.py [--out DIR] [--no-execute] [--jobs N]
[--leaderboard DIR] [--force]`.

Sphinx + myst-nb + sphinx-book-theme, offline. The pages are the README (home), the guides (docs/*.md), each track's
README, RESULTS.md and notebooks, BEST_PRACTICES, RESOURCES, CONTRIBUTING, one card per dataset (`astrobench info
NAME`, generated here) and a leaderboard page (linking to a site built by `astrobench leaderboard`, copied in with
--leaderboard).

Notebooks run in FAST mode in a temporary copy of their own folder (the working directory they expect, as under nbval,
but what they write, outputs/ and __pycache__/, stays out of the checkout and is deleted after), N at a time, and
their executed copies go into a jupyter-cache keyed by the notebook's content: an unchanged notebook is not run
again. Sphinx renders the executed
copies with myst-nb's execution off. The cache folder itself is keyed by the code the notebooks run (the astrobench
package, the track scripts, the shipped models, pyproject.toml, the installed packages' versions), so outputs never
outlive a change to that code. The committed notebooks are only read; outputs live in build/site only."""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import site_layout as layout  # noqa: E402
from astrobench.data.cache import swap_in  # noqa: E402

ROOT, BUILD = layout.ROOT, layout.BUILD
# the notebooks' kernels inherit this environment: quick mode, one thread each (N kernels share the cores), and
# matplotlib's inline backend so that figures become outputs (`make` exports MPLBACKEND=Agg for the tests)
KERNEL_ENV = {"ASTROBENCH_FAST": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


# ipykernel logs this once per kernel, on stderr (16 lines over tqdm's bar): dropped where the kernels are started
KERNEL_NOISE = b"Kernel is running over TCP without encryption"
# not copied into a notebook's run folder: what notebooks write (outputs/), caches; folders are linked, files copied
RUN_SKIP = shutil.ignore_patterns("outputs", ".ipynb_checkpoints", "__pycache__", "*.egg-info")

MARKER = ".astrobench-site"  # marks a folder this script wrote, so that --out never replaces anything else


class SiteError(Exception):
    """A problem the user can fix, said in one line."""


def code_key() -> str:
    """Hash of everything a notebook's outputs depend on besides its own content."""
    h = hashlib.sha256()
    files = [ROOT / "pyproject.toml"]
    files += [p for p in (ROOT / "shared" / "astrobench").rglob("*") if "__pycache__" not in p.parts]
    for t in layout.tracks():
        files += list((ROOT / t).glob("*.py")) + list((ROOT / t / "pretrained").rglob("*"))
    for p in sorted(f for f in files if f.is_file()):
        h.update(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    dists = sorted(f"{d.metadata['Name']}=={d.version}".lower() for d in metadata.distributions())
    h.update("\n".join([sys.version, *dists, repr(sorted(KERNEL_ENV.items()))]).encode())
    return h.hexdigest()[:16]


def cache_path() -> Path:
    return BUILD / "jupyter_cache" / code_key()


def stale_notebooks(cache, paths) -> list:
    """The notebooks whose content has no executed copy in the cache."""
    import nbformat

    stale = []
    for p in paths:
        try:
            cache.match_cache_notebook(nbformat.read(p, as_version=4))
        except KeyError:
            stale.append(p)
    return stale


def run_folder(folder: Path, under: Path) -> Path:
    """A stand-in for a notebook's folder, ``under/<its path in the kit>``: the folder's files copied (a track script
    finds its pretrained/ beside itself), its subfolders linked, outputs/ and caches left out, so a notebook reads
    what it would read at home and writes only into the stand-in."""
    rel = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else Path(folder.name)
    dest = under / rel
    dest.mkdir(parents=True, exist_ok=True)
    skipped = RUN_SKIP(str(folder), [p.name for p in folder.iterdir()])
    for p in sorted(folder.iterdir()):
        if p.name in skipped:
            continue
        if p.is_dir():
            (dest / p.name).symlink_to(p.resolve(), target_is_directory=True)
        else:
            shutil.copy2(p, dest / p.name)
    return dest


@contextmanager
def _stderr_without(noise: bytes):
    """Drop the lines holding ``noise`` from what this process and the processes it starts (kernels) write to
    stderr; everything else passes through."""
    sys.stderr.flush()
    saved = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def pump():
        with os.fdopen(read, "rb") as src, os.fdopen(os.dup(saved), "wb", buffering=0) as dst:
            for line in src:
                if noise not in line:
                    dst.write(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe closes once the kernel, which inherited it, has exited too
        os.close(saved)
        thread.join(timeout=10)


def _run_notebook(path: str, timeout: int, cwd: str | None = None):
    """One notebook, executed in ``cwd`` (default: its own folder) in a worker process; returns (executed json,
    seconds, error)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ.update(KERNEL_ENV)  # this worker's kernel inherits it; the caller's environment stays as it was
    os.environ.pop("ASTROBENCH_EVENT", None)  # the site shows the public kit, never an event's released test split
    nb = nbformat.read(path, as_version=4)
    with _stderr_without(KERNEL_NOISE):
        result = single_nb_execution(nb, cwd=cwd or str(Path(path).parent), timeout=timeout, allow_errors=False)
    error = None
    if result.err is not None:
        cells = [i for i, c in enumerate(nb.cells) if "error" in {o.get("output_type") for o in c.get("outputs", [])}]
        where = f"cell {cells[0] + 1} of {len(nb.cells)}" if cells else "a cell"
        last = (str(getattr(result.err, "ename", "")) + ": " + str(getattr(result.err, "evalue", ""))).strip(": ")
        error = f"{where} raised {last or type(result.err).__name__}"
    return nbformat.writes(nb), result.time, error


def execute(paths, cache, jobs: int, timeout: int = 600) -> list:
    """Run the stale notebooks, `jobs` at a time, caching each one that succeeds; returns the ones it ran."""
    import nbformat
    from jupyter_cache.base import CacheBundleIn
    from tqdm.auto import tqdm

    stale = stale_notebooks(cache, paths)
    if not stale:
        return []
    failures = []
    # one stand-in folder per notebook folder, shared by its notebooks as their home is (03 may read 02's outputs/)
    with tempfile.TemporaryDirectory(prefix="astrobench-site-run-") as under, \
            ProcessPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(stale), desc="executing notebooks (FAST)", unit="nb") as bar:
        homes = {folder: run_folder(folder, Path(under)) for folder in sorted({p.parent for p in stale})}
        futures = {pool.submit(_run_notebook, str(p), timeout, str(homes[p.parent])): p for p in stale}
        for fut in as_completed(futures):
            path = futures[fut]
            rel = path.relative_to(ROOT).as_posix()
            text, seconds, error = fut.result()
            if error:
                failures.append(f"{rel}: {error}")
            else:  # written by this process only: jupyter-cache's sqlite index is not for concurrent writers
                cache.cache_notebook_bundle(CacheBundleIn(nbformat.reads(text, as_version=4), str(path),
                                                          data={"execution_seconds": seconds}),
                                            check_validity=False, overwrite=True)
            bar.set_postfix_str(rel.rsplit("/", 1)[-1])
            bar.update()
    if failures:
        raise SiteError("notebook failed: " + "; ".join(sorted(failures)))
    return stale


def _write(path: Path, text: str) -> None:
    """Write only on change, so Sphinx's incremental build keeps the pages it has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    elif not dst.is_file() or dst.read_bytes() != src.read_bytes():
        shutil.copy2(src, dst)


def dataset_pages() -> dict:
    """datasets/index.md and one page per dataset: the card of `astrobench info NAME` under a short summary."""
    from astrobench import data

    rows, pages = [], {}
    for name in layout.datasets():
        info = data.info(name)
        tracks = ", ".join(info["tracks"]) or "–"
        rows.append(f"| [{name}]({name}.md) | {info['kind']} | {tracks} | {info['description']} |")
        if info["kind"] == "simulated":
            size = ", ".join(f"{mode}: " + ", ".join(f"{k} {v:,}" for k, v in s.items())
                             for mode, s in info["sizes"].items())
        else:
            size = f"{info['size_bytes'] / 1e6:,.0f} MB download" if info.get("size_bytes") else "download"
        summary = (f"```{{admonition}} astrobench info {name}\n"
                   f"{info['kind']}, version {info['version']}; tracks: {tracks}; {size}; "
                   f"licence: {info['licence']}. Load it with `astrobench.data.load(\"{name}\", split)`.\n```\n\n")
        card = info["card"]
        head, _, rest = card.partition("\n")
        pages[f"datasets/{name}.md"] = (f"{head}\n\n{summary}{rest}" if head.startswith("# ")
                                        else f"# {name}\n\n{summary}{card}")
    tasks = layout.task_cards()
    for name, card in tasks.items():
        pages[f"datasets/{name}.md"] = card
    pages["datasets/index.md"] = (
        "# Datasets\n\nEvery dataset of the kit loads with `astrobench.data.load(name, split)`; simulated ones are "
        "generated on first use, real ones are one checksummed download. Each card (`astrobench info NAME`) records "
        "provenance, generator parameters, splits, licence and citation.\n\n"
        "| dataset | kind | tracks | what it is |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
        + ("\nThe SBI track's tasks simulate on the fly (`astrobench.sim.sbi_tasks`); their cards record the "
           "simulators, the fixed observations and the reference posteriors: "
           + ", ".join(f"[{n}]({n}.md)" for n in tasks) + ".\n" if tasks else ""))
    return pages


def leaderboard_page(has_board: bool) -> str:
    text = "# Leaderboard\n\n"
    if has_board:
        return text + ("The event's leaderboard: <a href=\"leaderboard/index.html\">open the leaderboard</a> "
                       "(rankings per track with 95 % bootstrap intervals, the baseline row and each track's floor "
                       "or ceiling, built by `astrobench leaderboard`).\n")
    return text + ("No leaderboard has been built into this site yet. Organisers build one with "
                   "`astrobench leaderboard submissions --out board` (see the [event guide](docs/events.md), "
                   "*Leaderboard*) and add it with `python site/build.py --leaderboard board`; the site's workflow "
                   "does this when the repository has a `submissions/` folder.\n")


def stage(src: Path, leaderboard: Path | None, cache=None) -> None:
    """Sphinx's source folder: the pages, laid out as in the repository, plus the generated pages. With a cache, each
    notebook is staged as its executed copy (its outputs merged in by jupyter-cache), so Sphinx renders outputs
    without ever executing anything (myst-nb's own "cache" mode would run a notebook it cannot match, in the wrong
    folder)."""
    import nbformat

    wanted = {p: ROOT / p for p in (*layout.KIT_PAGES, *layout.guides())}
    for t in layout.tracks():
        wanted[f"{t}/README.md"] = ROOT / t / "README.md"
        wanted.update({rel: ROOT / rel for rel in layout.track_pages(t)})
        if (ROOT / t / "figures").is_dir():
            wanted[f"{t}/figures"] = ROOT / t / "figures"
    generated = dataset_pages()
    generated["leaderboard.md"] = leaderboard_page(leaderboard is not None)
    for path in layout.notebooks():
        rel = path.relative_to(ROOT).as_posix()
        if cache is None:
            wanted[rel] = path
        else:
            _, executed = cache.merge_match_into_notebook(nbformat.read(path, as_version=4))
            generated[rel] = nbformat.writes(executed)
    keep = set(wanted) | set(generated)
    if src.is_dir():  # drop pages that left the site (a notebook renamed, a dataset removed)
        for p in sorted(src.rglob("*"), reverse=True):
            rel = p.relative_to(src).as_posix()
            if p.is_file() and not any(rel == k or rel.startswith(k + "/") for k in keep):
                p.unlink()
    for rel, path in wanted.items():
        _copy(path, src / rel)
    for rel, text in generated.items():
        _write(src / rel, text)


def sphinx(src: Path, out: Path) -> None:
    """sphinx-build in its own process: its configuration and extensions load fresh on every build, and a caller's
    warning filters (pytest's "error") do not turn Sphinx's own deprecation notices into failures."""
    args = ["-b", "html", "-c", str(HERE), "-d", str(BUILD / "doctrees"), "-W", "--keep-going", "-q", str(src),
            str(out)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    if subprocess.run([sys.executable, "-m", "sphinx", *args], env=env).returncode != 0:
        raise SiteError("sphinx-build reported the problems above (warnings count as errors: a broken link, a "
                        "missing page)")


def build(out: Path, execute_outputs: bool = True, jobs: int = 2, leaderboard: Path | None = None,
          force: bool = False) -> dict:
    """Build the site into `out`; returns what it did: {"executed": [...], "cache": path, "out": out}."""
    from jupyter_cache import get_cache

    out = Path(out)
    if leaderboard is not None and not (leaderboard / "index.html").is_file():
        raise SiteError(f"--leaderboard {leaderboard}: no index.html; expected a site from `astrobench leaderboard`")
    ours = out.resolve() == (BUILD / "html").resolve() or (out / MARKER).is_file()  # build/site is this script's
    if out.exists() and not (out.is_dir() and (ours or not any(out.iterdir()))):
        raise SiteError(f"--out {out}: exists and is not a site from site/build.py; expected a new folder or an "
                        "earlier site (which is replaced)")
    ran, cache = [], None
    if execute_outputs:
        cache_path().mkdir(parents=True, exist_ok=True)
        cache = get_cache(cache_path())
        if force:
            cache.clear_cache()
            cache = get_cache(cache_path())
        for old in (BUILD / "jupyter_cache").iterdir():  # caches of code that has changed since
            if old != cache_path() and old.is_dir():
                shutil.rmtree(old)
        ran = execute(layout.notebooks(), cache, jobs)
    stage(BUILD / "src", leaderboard, cache)
    # built beside `out`, then swapped in: a failed build leaves the earlier site as it was, never half a site
    tmp = out.with_name(f".{out.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        sphinx(BUILD / "src", tmp)
        shutil.copy2(tmp / "README.html", tmp / "index.html")  # the home page where a web server looks for it
        (tmp / ".nojekyll").touch()  # GitHub Pages: serve _static/ and _images/ as they are
        (tmp / MARKER).write_text("written by site/build.py; the folder is replaced whole by the next build\n")
        if leaderboard is not None:
            shutil.copytree(leaderboard, tmp / "leaderboard")
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"executed": ran, "cache": cache_path() if execute_outputs else None, "out": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="site/build.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=BUILD / "html", help="output folder (default build/site/html)")
    ap.add_argument("--no-execute", action="store_true", help="render the notebooks without outputs (quick)")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("SITE_JOBS", 2)),
                    help="notebooks executed at a time (default 2, or $SITE_JOBS)")
    ap.add_argument("--leaderboard", type=Path, help="a site written by `astrobench leaderboard`, published with it")
    ap.add_argument("--force", action="store_true", help="execute every notebook again (empty the cache first)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        print("site/build.py: --jobs must be >= 1", file=sys.stderr)
        return 2
    try:
        done = build(args.out, not args.no_execute, args.jobs, args.leaderboard, args.force)
    except SiteError as err:
        print(f"site/build.py: {err}", file=sys.stderr)
        return 2 if str(err).startswith("--") else 1
    n = len(layout.notebooks())
    print(f"site: {done['out'] / 'index.html'} ({n} notebook pages; executed now: {len(done['executed'])}, "
          f"from the cache: {n - len(done['executed']) if not args.no_execute else 0})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
