"""What the notebooks in ``notebooks/`` share: their size and where they write.

``RULELAB_NOTEBOOK_SIZE=small`` runs a notebook at the size CI executes (seconds to a minute on a laptop CPU);
``full`` (the default) at the size its figures are meant to be read at. ``RULELAB_NOTEBOOK_OUT`` moves the
results folders (default ``runs/notebooks`` under the repository root); a sweep rerun into the same folder
reuses its finished runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

SIZES = ("small", "full")


class NotebookSettings(NamedTuple):
    size: str  # "small" or "full"
    root: Path  # the repository root (the folder holding pyproject.toml), or the working directory
    out_dir: Path  # this notebook's results folder

    @property
    def small(self) -> bool:
        return self.size == "small"


def repository_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) that holds ``pyproject.toml``."""
    start = (start or Path.cwd()).absolute()
    return next((p for p in (start, *start.parents) if (p / "pyproject.toml").is_file()), start)


def notebook_settings(name: str) -> NotebookSettings:
    """Size from ``RULELAB_NOTEBOOK_SIZE`` and results folder ``<RULELAB_NOTEBOOK_OUT>/<name>``."""
    size = os.environ.get("RULELAB_NOTEBOOK_SIZE", "full")
    if size not in SIZES:
        raise ValueError(f"RULELAB_NOTEBOOK_SIZE must be one of {', '.join(SIZES)}, got {size!r}")
    root = repository_root()
    out = Path(os.environ.get("RULELAB_NOTEBOOK_OUT", root / "runs" / "notebooks")) / f"{name}-{size}"
    return NotebookSettings(size, root, out)
