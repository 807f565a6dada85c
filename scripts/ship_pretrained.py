"""Ship a full run's model as a track's pretrained baseline (what `--pretrained` loads).

    python scripts/ship_pretrained.py TRACK RUN_DIR --command "python anomaly/autoencoder.py --threads 1 --out RUN_DIR"

Reads the run's weights (written by the kit's own script in that run), its config and metrics.json, and writes
<track>/pretrained/[<dataset>/]: model.safetensors, config.json, metrics.json and manifest.json (sha256 of each,
the training data's identity, the command, the budget and the wall time). SBI and superres keep one model per task
or dataset in a subfolder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# script's model: (weights in the run folder, config in the run folder, sub-folder per dataset); a track's second
# baseline is <track>-<script> and ships into <track>/pretrained/<script>/
RUN_FILES = {
    "anomaly": ("autoencoder.pt", "autoencoder.json", False),
    "anomaly-timeseries": ("timeseries.pt", "timeseries.json", False),
    "superres": ("model.pt", "model_config.json", True),
    "multimodal": ("clip.pt", "clip.config.json", False),
    "sbi": ("npe.pt", "npe_config.json", True),
    "generative": ("checkpoint/model_ema.safetensors", "checkpoint/config.json", False),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("track", choices=sorted(RUN_FILES))
    p.add_argument("run_dir")
    p.add_argument("--command", required=True, help="the exact command that made the run")
    args = p.parse_args(argv)
    import torch
    from astrobench import baseline, data

    run = Path(args.run_dir)
    weights, config, per_dataset = RUN_FILES[args.track]
    report = json.loads((run / "metrics.json").read_text())
    if report.get("stopped_by_clock") or report["config"].get("mode") != "full":
        print("ship_pretrained.py: error: only full runs that no clock stopped are shipped", file=sys.stderr)
        return 2
    if weights.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(run / weights))
    else:  # a state dict this kit's script wrote in that run
        state = torch.load(run / weights, map_location="cpu", weights_only=True)
    dataset = report["dataset"]
    if args.track == "sbi":  # a task's identity: npe.py's task_meta, the one --pretrained checks
        import importlib.util

        from astrobench.sim.sbi_tasks import get_task

        spec = importlib.util.spec_from_file_location("npe", ROOT / "sbi" / "npe.py")
        npe = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(npe)
        meta = npe.task_meta(get_task(dataset))
    else:
        meta = data.load(dataset, "test", fast=False, progress=False).meta
    track, _, second = args.track.partition("-")
    folder = ROOT / track / "pretrained" / second / (dataset if per_dataset else "")
    manifest = baseline.save_pretrained(folder, state, json.loads((run / config).read_text()), report, meta,
                                        args.command)
    size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
    print(f"{folder}: {size:.2f} MB, trained on {manifest['dataset']['name']} v{manifest['dataset']['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
