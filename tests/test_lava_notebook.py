"""The Lava deployment notebook runs top to bottom on a handful of samples."""
from __future__ import annotations

import importlib.util
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "deploy_to_lava.ipynb"


def _run_notebook():
    # `from conftest import run_notebook` fails under pytest's --import-mode=importlib (tests/ is
    # not on sys.path), so load the helper from the file.
    spec = importlib.util.spec_from_file_location("_lava_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_notebook


def test_deploy_to_lava_notebook_executes(tmp_path):
    params = {"N_SAMPLES": 6, "STEPS": 12, "NEURONS": 32, "HEBB_EPOCHS": 2, "READOUT_EPOCHS": 3, "LEARN_SAMPLES": 3}
    nb = _run_notebook()(NOTEBOOK, params, timeout=600, cwd=tmp_path)
    text = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "Lava fixed_pt accuracy" in text and "agreement" in text
    assert "twin == Lava (spike counts): True" in text
    assert '"identical": true' in text
    assert "sigma-delta twin == Lava: True" in text
    images = [out for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    assert len(images) >= 2, "the raster figures were not displayed"
