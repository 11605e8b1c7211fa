"""The quantised-training notebook runs top to bottom on a small MNIST subset."""
from __future__ import annotations

from pathlib import Path

from conftest import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quantised_training.ipynb"


def test_quantised_training_notebook_runs(shared_data_dir, tmp_path):
    nb = run_notebook(NOTEBOOK, {
        "DATA_DIR": str(shared_data_dir), "N_TRAIN": 60, "N_TEST": 100, "SEEDS": 1, "WEIGHT_BITS": [4],
        "ROUNDINGS": ["stochastic"], "READOUT_EPOCHS": 2, "OUT_DIR": str(tmp_path / "sweep"),
    }, timeout=300)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "'N_TRAIN': 60" in outputs  # the injected parameters won over the notebook's defaults
    assert "bit-identical weights: True" in outputs
    assert (tmp_path / "sweep" / "accuracy_vs_bits.png").is_file()
