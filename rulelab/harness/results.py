"""Tidy results: one row per rule × hyperparameter setting × seed × evaluation point, saved as Parquet."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def grid_to_frame(metrics: dict[str, np.ndarray], hparams: dict[str, Any], **labels: Any) -> pd.DataFrame:
    """Flatten metrics ``[hparams, seeds, evals, ...]`` into a tidy frame; vector metrics get one column each."""
    num_h, num_s, num_e = np.shape(metrics["step"])[:3]
    h_index, s_index, e_index = np.meshgrid(np.arange(num_h), np.arange(num_s), np.arange(num_e), indexing="ij")
    columns: dict[str, Any] = {k: v for k, v in labels.items()}
    for name, values in hparams.items():
        values = np.broadcast_to(np.atleast_1d(np.asarray(values, np.float64)), (num_h,))
        columns[name] = values[h_index.ravel()]
    columns["hparam_index"] = h_index.ravel()
    columns["seed"] = s_index.ravel()
    for name, values in metrics.items():
        values = np.asarray(values)
        if values.ndim == 3:
            columns[name] = values.ravel()
        else:
            flat = values.reshape(num_h * num_s * num_e, -1)
            for i in range(flat.shape[1]):
                columns[f"{name}_{i}"] = flat[:, i]
    return pd.DataFrame(columns)


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write atomically: a temporary name, then a rename, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(temporary, index=False)
    os.replace(temporary, path)
    return path


def write_json(data: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)
    return path
