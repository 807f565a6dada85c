"""Test helpers shared by the tracks."""

from __future__ import annotations

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
