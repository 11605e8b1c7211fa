"""The on-chip feasibility notebook runs top to bottom (on the small digits network)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_notebook():
    # `from conftest import run_notebook` needs tests/ on sys.path, which --import-mode=importlib
    # does not provide; load the helper from its file instead.
    spec = importlib.util.spec_from_file_location("_feasibility_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_notebook


@pytest.mark.slow
def test_notebook_executes_and_reports_every_chip(tmp_path):
    nb = _run_notebook()(ROOT / "notebooks" / "on_chip_feasibility.ipynb",
                         {"PRESET": "digits", "SAMPLES": 8, "TIME_STEPS": 16}, timeout=300, cwd=tmp_path)
    text = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    for name in ("loihi", "loihi2", "spinnaker2", "truenorth"):
        assert name in text
    assert "dw =" in text  # the Loihi 2 rule was emitted
    assert "2-bit weights" in text and "9-bit weights" in text
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
