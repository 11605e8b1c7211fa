"""Shared fixtures: the optional ../shared/data folder, and executing notebooks so they never rot."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NEUROHEBB_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The complete datasets beside the checkout; tests needing them skip cleanly without them."""
    if not (SHARED_DATA / "mnist" / "MANIFEST.json").is_file():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _quiet_matplotlib(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


def run_notebook(path: Path, parameters: dict | None = None, timeout: int = 600, cwd: Path | None = None):
    """Execute a notebook top to bottom; `parameters` are injected as a first code cell.

    Notebooks read their sizes from variables (e.g. N_TRAIN) so the suite can run them on a
    small subset; injecting a cell keeps the notebook itself unchanged on disk.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    if parameters:
        lines = [f"{k} = {v!r}" for k, v in parameters.items()]
        nb.cells.insert(0, nbformat.v4.new_code_cell("\n".join(lines)))
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd or path.parent)}}
    )
    client.execute()
    return nb
