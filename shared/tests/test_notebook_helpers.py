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


@pytest.fixture
def clean_mode(monkeypatch):
    """No ASTROBENCH_FAST, no CI, no settings cell run yet (as a fresh Colab or Binder kernel)."""
    monkeypatch.delenv("ASTROBENCH_FAST", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(notebook, "_FULL", None)


def test_settings_cell_makes_an_interactive_kernel_quick(clean_mode, monkeypatch):
    assert notebook.fast() is False  # a script outside CI: full
    assert notebook.settings(full=False) is True and notebook.fast() is True  # the notebook's default
    assert notebook.settings(full=True) is False and notebook.fast() is False
    monkeypatch.setenv("CI", "true")
    assert notebook.settings(full=True) is True  # CI stays FAST
    monkeypatch.setenv("ASTROBENCH_FAST", "0")
    assert notebook.settings(full=False) is False  # the environment variable decides when set


def test_settings_rejects_a_non_boolean(clean_mode):
    with pytest.raises(notebook.SettingError, match="expected True or False"):
        notebook.settings(full="yes")


def test_settings_reach_data_load(clean_mode, tmp_path, monkeypatch):
    from astrobench import data

    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path))
    notebook.settings(full=False)
    quick = data.load("superres-fields", "test")  # no fast= argument: the settings cell decides
    assert quick.meta["sha256"] == data.load("superres-fields", "test", fast=True).meta["sha256"]


def test_pretrained_prints_the_reason_and_returns_none(capsys):
    from astrobench.baseline import BaselineError

    def stale():
        raise BaselineError("--pretrained: the shipped model was trained on galaxies v1.0.0")

    assert notebook.pretrained(stale) is None
    assert "no pretrained model: --pretrained: the shipped model" in capsys.readouterr().out
    assert notebook.pretrained(lambda x: x + 1, 1) == 2


def test_device_can_be_forced_by_the_environment(monkeypatch):
    monkeypatch.setenv("ASTROBENCH_DEVICE", "cpu")
    assert notebook.device() == "cpu"
    assert notebook.device("cuda") == "cuda"  # an explicit choice wins
    monkeypatch.setenv("ASTROBENCH_DEVICE", "gpu")
    with pytest.raises(notebook.SettingError, match="ASTROBENCH_DEVICE='gpu': expected auto"):
        notebook.device()
