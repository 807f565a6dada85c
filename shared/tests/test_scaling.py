"""astrobench.scaling: the accelerate flags and the Accelerator every baseline builds."""

import argparse

import pytest
from astrobench import scaling

pytest.importorskip("accelerate")


def parse(*argv):
    p = argparse.ArgumentParser()
    scaling.add_arguments(p)
    return p.parse_args(list(argv))


def test_flags_and_a_single_process_accelerator():
    args = parse("--grad-accum", "3", "--mixed-precision", "no")
    acc = scaling.accelerator_from_args(args, "cpu")
    assert acc.num_processes == 1 and acc.is_main_process and acc.gradient_accumulation_steps == 3
    assert str(acc.device) == "cpu" and acc.mixed_precision == "no"


def test_bad_values_give_one_line_errors():
    with pytest.raises(ValueError, match=r"^--grad-accum 0: expected a positive integer$"):
        scaling.accelerator_from_args(parse("--grad-accum", "0"), "cpu")
    with pytest.raises(SystemExit):  # argparse's own choices check
        parse("--mixed-precision", "fp8")


def test_cuda_without_a_gpu_is_a_clear_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(ValueError, match="--device cuda: no CUDA GPU visible to torch"):
        scaling.accelerator_from_args(parse(), "cuda")
