"""What every notebook promises (issue 16): a visible settings cell right after the Colab bootstrap (quick unless
FULL), the device at every training and inference call site, "What to try next" at the end, and the 03 notebooks'
three steps to a scored submission. Static checks on the notebooks' code (ast), so a future cell cannot forget."""

import ast
import json
from pathlib import Path

import pytest
from astrobench import badges

ROOT = badges.repo_root(Path(__file__))
NOTEBOOKS = badges.notebooks(ROOT)
SCRIPTS = {"diffusion", "npe", "contrastive", "AE", "TS", "upsampler", "stochastic"}  # how notebooks import scripts
# a script function that trains or runs a model: each call must say where (DEVICE, or a Run built with DEVICE)
DEVICE_CALLS = {"train", "train_clip", "build_npe", "predict", "evaluate", "embed_all"}
LOADERS = {"load_pretrained", "load_shipped"}  # model loaders that take the device (upsampler's and AE's do not)


def cells(path):
    nb = json.loads(path.read_text())
    return nb, [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def notebook(request):
    return request.param


def test_settings_cell_follows_the_bootstrap(notebook):
    nb, _ = cells(notebook)
    src = "".join(nb["cells"][2]["source"])
    assert nb["cells"][2]["cell_type"] == "code", "cell 2: the settings cell"
    assert "\nFULL = False\n" in src, "the settings cell sets FULL = False (quick by default)"
    assert "FAST = notebook.settings(full=FULL)" in src and "DEVICE = notebook.device()" in src
    comment = src.split("\nFULL = False\n")[0]
    assert "FULL = True" in comment and ("CPU" in comment or "not needed" in comment), \
        "the comment says what FULL changes and how long the full run takes"
    for i, c in enumerate(nb["cells"][3:], 3):  # one switch: no cell decides FAST on its own
        code = "".join(c["source"]) if c["cell_type"] == "code" else ""
        assert "FAST = fast()" not in code and "seed_everything(" not in code, f"cell {i}: use the settings cell's"


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                yield f.value.id, f.attr, node
            elif isinstance(f, ast.Name) and f.id == "local_run":
                yield "baseline", "local_run", node


def _passes_device(call) -> bool:
    args = [*call.args, *(k.value for k in call.keywords)]
    text = " ".join(ast.unparse(a) for a in args)
    return "DEVICE" in text or any(k.arg == "run" for k in call.keywords) or any(
        isinstance(a, ast.Name) and a.id == "run" for a in call.args)


def test_every_training_and_inference_call_passes_the_device(notebook):
    _, code = cells(notebook)
    missing = []
    for i, src in code:
        for module, name, call in _calls(ast.parse(src)):
            if name == "local_run" and "DEVICE" not in ast.unparse(call):
                missing.append(f"cell {i}: {ast.unparse(call)}")
            elif module in SCRIPTS and name in DEVICE_CALLS and not _passes_device(call):
                missing.append(f"cell {i}: {ast.unparse(call)}")
            elif module == "notebook" and name == "pretrained" and call.args:
                loader = ast.unparse(call.args[0])
                if loader.split(".")[-1] in LOADERS and loader.split(".")[0] in {"diffusion", "npe", "contrastive"} \
                        and "DEVICE" not in ast.unparse(call):
                    missing.append(f"cell {i}: {ast.unparse(call)}")
    assert not missing, "without the device (pass DEVICE or run=baseline.local_run(DEVICE)):\n" + "\n".join(missing)


def test_the_grep_catches_a_call_without_the_device():
    bad = ast.parse("model = diffusion.train(x, config, 'out')\nrun = baseline.local_run(seed=0)")
    assert [name for _, name, call in _calls(bad) if not _passes_device(call)] == ["train", "local_run"]
    good = ast.parse("diffusion.train(x, c, 'o', run=run)\nnpe.build_npe(task, cfg, device=DEVICE)")
    assert all(_passes_device(call) for _, _, call in _calls(good))


def test_ends_with_what_to_try_next(notebook):
    nb, _ = cells(notebook)
    tail = ["".join(c["source"]) for c in nb["cells"][-2:] if c["cell_type"] == "markdown"]
    assert any("## What to try next" in t for t in tail), "one of the last two cells: a 'What to try next' section"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name.startswith("03_")],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_03_notebooks_end_with_the_three_steps_to_a_score(path):
    nb, code = cells(path)
    text = "".join("".join(c["source"]) for c in nb["cells"][-2:])
    assert "predictions.npz" in text and "astrobench score" in text and "baseline row" in text
    assert 'cli.main(["score"' in code[-1][1], "the last code cell scores predictions.npz with the CLI's code"
    assert "pretrained" in "".join(src for _, src in code[:4]), "03 loads a saved or pretrained model first"
