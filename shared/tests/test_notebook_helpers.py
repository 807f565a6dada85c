import numpy as np
import pytest
from astrobench import notebook


@pytest.mark.parametrize(
    ("fast_env", "ci_env", "expected"),
    [("1", None, True), ("true", None, True), ("0", "true", False), ("false", "1", False),
     (None, "true", True), (None, None, False)],
)
def test_fast_mode_follows_env_then_ci(monkeypatch, fast_env, ci_env, expected):
    for var, value in (("ASTROBENCH_FAST", fast_env), ("CI", ci_env)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    assert notebook.fast() is expected


def test_fast_mode_rejects_garbage(monkeypatch):
    monkeypatch.setenv("ASTROBENCH_FAST", "maybe")
    with pytest.raises(ValueError, match="ASTROBENCH_FAST"):
        notebook.fast()


def test_seed_everything_makes_numpy_and_torch_repeat():
    torch = pytest.importorskip("torch")
    notebook.seed_everything(3)
    a = np.random.rand(3), torch.rand(3)  # noqa: NPY002 - the legacy global state is what is seeded
    notebook.seed_everything(3)
    b = np.random.rand(3), torch.rand(3)  # noqa: NPY002
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_device_choice():
    assert notebook.device("cpu") == "cpu"
    assert notebook.device() in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="expected auto"):
        notebook.device("tpu")
