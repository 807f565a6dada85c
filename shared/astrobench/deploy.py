"""Edge deployment helpers shared by the baselines that export to ONNX (anomaly, super-resolution).

A telescope site runs the exported file with onnxruntime and numpy only; these helpers export a torch
module, open an onnxruntime session and time either side per image.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np


def onnx_export(module, example, path, input_name: str, output_names, dynamic: dict) -> Path:
    """Export ``module`` to one self-contained ONNX file with the named dynamic axes of its input.

    Uses torch.onnx's torch.export-based exporter (``dynamo=True``, needs onnxscript): the TorchScript exporter
    still runs in torch 2.13 but warns that it will be removed.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    output_names = [output_names] if isinstance(output_names, str) else list(output_names)
    with warnings.catch_warnings():  # torch 2.13 calls its own deprecated pytree API while exporting
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
        shapes = {input_name: {axis: torch.export.Dim(name) for axis, name in dynamic.items()}}
        torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=output_names,
                          dynamic_shapes=shapes, dynamo=True, external_data=False, verbose=False)
    return path


def onnx_session(path, threads: int | None = None):
    """An onnxruntime CPU session: all a site needs (pip install onnxruntime numpy)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def latency_ms(fn, images, repeats: int = 3) -> float:
    """Median over ``repeats`` of the mean wall time per image, one image per call (a site scores as they come)."""
    fn(images[:1])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(len(images)):
            fn(images[i : i + 1])
        times.append((time.perf_counter() - t0) / len(images))
    return float(np.median(times) * 1e3)


def torch_vs_onnxruntime_ms(module, session, input_name: str, images, threads: int) -> tuple[float, float]:
    """(torch, onnxruntime) milliseconds per image for the same inputs, torch held to ``threads`` threads like the
    session, so the two sides compare on equal CPU."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            ms_torch = latency_ms(lambda b: module(torch.from_numpy(b)), images)
        ms_ort = latency_ms(lambda b: session.run(None, {input_name: b}), images)
    finally:
        torch.set_num_threads(old)
    return ms_torch, ms_ort


def export_checked(module, inputs, path, input_name: str, output_names, dynamic: dict, describe: dict,
                   reference=None, threads: int = 1) -> dict:
    """Export ``module`` to ``path``, run it under onnxruntime on ``inputs`` (numpy, float32), compare with
    ``reference`` (torch outputs, default ``module(inputs)``) and time both on ``threads`` CPU threads.
    Returns, and writes to PATH.json, what a site needs: ``describe`` (inputs, outputs, constants...) plus the
    parity, the latency, the load average and the versions."""
    import json
    import os
    from importlib import metadata

    import torch

    inputs = np.array(inputs, dtype=np.float32)  # a writable copy (datasets are read-only memmaps)
    names = [output_names] if isinstance(output_names, str) else list(output_names)
    path = onnx_export(module, torch.from_numpy(inputs[:2]), path, input_name, names, dynamic)
    session = onnx_session(path, threads)
    if reference is None:
        with torch.no_grad():
            out = module(torch.from_numpy(inputs))
        reference = [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
    got = session.run(None, {input_name: inputs})
    # relative to max(|ref|, 1): a chi^2 of 1e5 is only resolved to ~1e-2 in float32
    diff = {n: float(np.max(np.abs(a - b))) for n, a, b in zip(names, got, reference)}
    rel = {n: float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0))) for n, a, b in zip(names, got, reference)}
    ms_torch, ms_ort = torch_vs_onnxruntime_ms(module, session, input_name, inputs, threads)
    info = {"model": path.name, **describe, "max_abs_diff_vs_torch": diff, "max_rel_diff_vs_torch": rel,
            "parity_images": len(inputs), "threads": threads,
            "latency_ms_per_image": {"torch": round(ms_torch, 3), "onnxruntime": round(ms_ort, 3)},
            "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "versions": {p: metadata.version(p) for p in ("torch", "onnx", "onnxruntime", "onnxscript")}}
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(info, indent=1))
    return info
