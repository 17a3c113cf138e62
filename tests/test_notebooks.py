"""Every notebook in notebooks/ (jupytext py:percent) executes at its small size, in a real Jupyter kernel.

The notebooks check their own scientific claims with asserts, so a notebook whose result no longer holds fails
here. ``RULELAB_NOTEBOOK_SIZE=small`` sets the size; results go to a temporary folder, never reused between runs.
The selected notebooks run concurrently, one kernel per CPU core, since each is mostly single-threaded compiling.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def test_every_issue_notebook_is_here():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


async def _execute_all(paths: list[Path], concurrency: int) -> dict[Path, object]:
    """Execute each notebook in its own kernel, at most ``concurrency`` at a time; a notebook or its exception."""
    import jupytext
    from nbclient import NotebookClient

    gate = asyncio.Semaphore(concurrency)

    async def execute(path: Path):
        async with gate:
            notebook = jupytext.read(path)
            client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                                    resources={"metadata": {"path": str(ROOT)}})
            try:
                await client.async_execute()
            except Exception as error:  # noqa: BLE001  (reported by the notebook's own test)
                return error
            return notebook

    results = await asyncio.gather(*(execute(p) for p in paths))
    return dict(zip(paths, results))


@pytest.fixture(scope="module")
def executed(request, tmp_path_factory):
    selected = [item.callspec.params["path"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_notebook_runs_at_small_size"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RULELAB_NOTEBOOK_SIZE", "small")
        patch.setenv("RULELAB_NOTEBOOK_OUT", str(tmp_path_factory.mktemp("notebooks")))
        # the "python3" kernel runs `python` from PATH: make it this interpreter (the test environment's)
        patch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        return asyncio.run(_execute_all(selected, concurrency=max(1, len(os.sched_getaffinity(0)))))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_at_small_size(path, executed):
    notebook = executed[path]
    if isinstance(notebook, Exception):
        raise notebook
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "every notebook shows at least one figure"
