"""Scaling with Hugging Face accelerate: the one Accelerator and the two CLI flags every baseline shares.

A baseline that builds its Accelerator here runs unchanged as one process (``python script.py``), as gloo DDP on
CPU cores, or on several GPUs (``accelerate launch script.py``): accelerate reads the process group from the
environment that ``accelerate launch`` sets up.
"""

from __future__ import annotations

MIXED_PRECISION = ("no", "fp16", "bf16")


def make_accelerator(device="cpu", mixed_precision=None, grad_accum: int = 1):
    """One Accelerator per run: the process group under ``accelerate launch``; a plain single process otherwise.
    ``device="cpu"`` asks for the CPU (gloo between processes); mixed_precision None follows
    ``accelerate launch --mixed_precision`` (default "no")."""
    from accelerate import Accelerator

    return Accelerator(cpu=str(device) == "cpu", mixed_precision=mixed_precision,
                       gradient_accumulation_steps=grad_accum)


def add_arguments(parser) -> None:
    """``--grad-accum N`` and ``--mixed-precision no|fp16|bf16`` on a baseline's argparse parser."""
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION,
                        help="autocast on a GPU (default: what `accelerate launch` says, else no)")


def accelerator_from_args(args, device: str):
    """The run's Accelerator from ``add_arguments``' flags and the resolved device; a ValueError with a one-line
    message (for the CLI's exit 2) on a bad value: no GPU for ``cuda``, fp16 without a GPU."""
    if args.grad_accum < 1:
        raise ValueError(f"--grad-accum {args.grad_accum}: expected a positive integer")
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU visible to torch; expected --device cpu or auto")
    try:
        return make_accelerator(device, args.mixed_precision, args.grad_accum)
    except ValueError as err:
        raise ValueError(f"--mixed-precision {args.mixed_precision}: {str(err).splitlines()[0]}") from None
