"""Test helpers shared by the tracks."""

from __future__ import annotations

import contextlib
import socket
import sys


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_cpu_command(script, *args: str, processes: int = 2) -> list[str]:
    """Command line for a multi-process CPU (gloo) run of ``script`` under ``accelerate launch``.

    accelerate 1.15's ``launch --cpu --num_processes N`` starts a single process (several CPU processes need
    mpirun), so this goes through torchrun with ``--multi_gpu``; the script's ``--device cpu`` picks gloo.
    """
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), str(script), *args]


# ------------------------------------------------------------------ real datasets, offline
# Small files in the real formats, served from 127.0.0.1, so that the real-data code paths (download,
# adapter, a track run with DATASET = "galaxy10-decals") are tested without contacting the real hosts.


def write_galaxy10(path, n: int, size: int, seed: int = 0):
    """A Galaxy10-format HDF5 file: ``images`` (n, size, size, 3) uint8 RGB (R = reddest band), ``ans`` labels
    and the catalogue columns of the real files. Returns the images."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 200, (n, size, size, 3), dtype=np.uint8)
    images[..., 0] = 250  # R channel: z (DECaLS) or i (SDSS) -> must end up last
    images[..., 2] = 10  # B channel: g -> must end up first
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["ans"] = rng.integers(0, 10, n).astype(np.uint8)
        for key in ("ra", "dec", "redshift", "pxscale"):
            f[key] = rng.uniform(0, 1, n)
    return images


def write_camels(path, n_maps: int = 30, seed: int = 1):
    """A CAMELS CMD-format ``.npy``: (n_maps, 256, 256) float32 log-normal maps (15 maps per simulation)."""
    import numpy as np

    maps = np.random.default_rng(seed).lognormal(0, 1, (n_maps, 256, 256)).astype(np.float32) * 1e10
    np.save(path, maps)
    return maps


@contextlib.contextmanager
def serve_directory(root):
    """Serve ``root`` over HTTP on 127.0.0.1; yields the base URL."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no access log on stderr
            pass

    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def local_real_dataset(name: str, root, as_name: str | None = None, n: int = 40):
    """Registry entry ``as_name`` (default: ``name`` itself, shadowing the real one) = the real entry ``name``
    pointed at a small synthetic file in its real format, written under ``root`` and served locally, with that
    file's sha256. Needs an isolated cache ($ASTROBENCH_DATA)."""
    import dataclasses
    import hashlib
    from pathlib import Path

    from . import data

    spec = data.registry.get(name)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if spec.filename.endswith(".h5"):
        write_galaxy10(root / spec.filename, n, 256 if "DECals" in spec.filename else 69)
    else:
        write_camels(root / spec.filename, n_maps=n)
    sha = hashlib.sha256((root / spec.filename).read_bytes()).hexdigest()
    local = as_name or name
    with serve_directory(root) as base:
        data.register(dataclasses.replace(spec, name=local, urls=(f"{base}/{spec.filename}",), sha256=sha))
        try:
            yield local
        finally:
            data.unregister(local)


def run_under_accelerate(script, *args: str, out, log_suffix: str = "", processes: int = 2):
    """Run ``script *args`` as ``processes`` gloo processes (FAST mode, one thread each) and check that it succeeded
    and that every rank wrote ``out/shard_rank{r}{log_suffix}.json`` knowing the process count.
    Returns (the finished launcher process, the ranks' logs in rank order)."""
    import json
    import os
    import subprocess
    from pathlib import Path

    env = dict(os.environ, ASTROBENCH_FAST="1", OMP_NUM_THREADS="1", ASTROBENCH_SHARD_LOG=str(out))
    cmd = accelerate_cpu_command(script, *args, processes=processes)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = [json.loads((Path(out) / f"shard_rank{r}{log_suffix}.json").read_text()) for r in range(processes)]
    assert [g["processes"] for g in logs] == [processes] * processes
    return proc, logs


# ------------------------------------------------------------------ shipped models (<track>/pretrained/)


def shipped_copy(module, tmp_path, monkeypatch):
    """A copy of ``module.PRETRAINED`` (a track's shipped models) under tmp_path, with the module pointed at it,
    so a test can damage it freely. Returns the copy."""
    import shutil

    folder = tmp_path / "pretrained"
    shutil.copytree(module.PRETRAINED, folder)
    monkeypatch.setattr(module, "PRETRAINED", folder)
    return folder


def flip_last_byte(path) -> None:
    """Change one bit of a file (its sha256 no longer matches the manifest)."""
    from pathlib import Path

    data = bytearray(Path(path).read_bytes())
    data[-1] ^= 1
    Path(path).write_bytes(bytes(data))


def restamp_training_data(folder, **identity) -> None:
    """Rewrite a shipped model's manifest as if it had been trained on other data (e.g. config_sha256="0" * 64)."""
    import json
    from pathlib import Path

    path = Path(folder) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["dataset"].update(identity)
    path.write_text(json.dumps(manifest))


# ------------------------------------------------------------------ your own data


def own_data_from(source: str, name: str, n_train: int, n_test: int, monkeypatch, tmp_path,
                  config_keys=None) -> str:
    """Register ``name`` as a user dataset (``data.register_arrays``) made of the first rows of the FAST
    ``source`` set: what a team's own arrays look like to the kit, in a test. The source is read from the usual
    cache; the user dataset goes to a fresh ``$ASTROBENCH_DATA`` under ``tmp_path`` (set for the rest of the test,
    so no other test sees it). Returns ``name``."""
    import numpy as np

    from astrobench import data

    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        ds = data.load(source, split, fast=True, progress=False)
        splits[split] = {k: np.asarray(v[:n] if len(v) == len(ds) else v) for k, v in ds.arrays.items()}
        splits[split]["truth"] = {c: np.asarray(ds.truth[c][:n]) for c in ds.truth.colnames}
    config = ds.meta["config"] if config_keys is None else {k: ds.meta["config"][k] for k in config_keys}
    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "own-data-cache"))
    data.register_arrays(name, splits, config=config, description=f"test: the first rows of {source}")
    return name
