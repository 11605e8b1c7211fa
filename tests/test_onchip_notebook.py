"""The on-chip learning notebook runs top to bottom on a small subset and answers from its numbers."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_notebook():
    # loaded from its file: --import-mode=importlib does not put tests/ on sys.path
    spec = importlib.util.spec_from_file_location("_onchip_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_notebook, module.SHARED_DATA


@pytest.mark.slow
def test_on_chip_learning_notebook_runs(tmp_path):
    run_notebook, shared = _run_notebook()
    params = {"N_TRAIN": 600, "N_TEST": 500, "NEURONS": 100, "POINTS": 3, "READOUT_EPOCHS": 5}
    if (shared / "mnist" / "MANIFEST.json").is_file():
        params["DATA_DIR"] = str(shared)  # 600 MNIST images; without them the built-in digits
    nb = run_notebook(ROOT / "notebooks" / "on_chip_learning.ipynb", params, timeout=300, cwd=tmp_path)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = "\n".join(o.get("text", "") for c in cells for o in c.get("outputs", []))
    assert "'N_TRAIN': 600" in text  # the injected parameters won
    assert "600 training and 500 test images" in text
    assert "on-chip learning (loihi2, rule" in text and "random weights (control)" in text
    assert "answer: the chip rule" in text
    images = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the curves and the receptive fields
