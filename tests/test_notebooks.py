"""Every notebook runs top to bottom with its default (CPU-sized) settings."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from .conftest import DATA_DIR  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path, minilm_path, monkeypatch):
    if not (DATA_DIR / "stsb").exists():
        pytest.skip("the notebooks read ../shared/data")
    monkeypatch.setenv("SENTSIM_DATA_DIR", str(DATA_DIR))
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=900,
        startup_timeout=300,  # a kernel can take over the default 60 s to start on 2 busy cores
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    errors = [
        o
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []


def test_there_are_five_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]
