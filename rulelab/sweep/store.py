"""A sweep's results folder: one tidy Parquet file per finished chunk, loaded back as one DataFrame or xarray.

    OUT/sweep.json                    the canonical config of the latest invocation
    OUT/chunks/chunk-<id>.parquet     one row per run × evaluation point, written under a temporary name, renamed
    OUT/checkpoints/<id>/             orbax checkpoints of an unfinished chunk (removed once it is written)
    OUT/summary.json, OUT/*.png       written when the sweep completes

A chunk file appears whole or not at all, so the set of finished runs is exactly the ``run_id`` values in
``chunks/``; an interrupted sweep rerun into the same folder trains only the others.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from rulelab.harness.results import grid_to_frame, write_parquet
from rulelab.sweep.plan import Run, hidden_label

CHUNKS = "chunks"
CHECKPOINTS = "checkpoints"
RUN_COLUMNS = ("run_id", "dataset", "rule", "rule_options", "hidden", "activation", "optimizer", "seed")
HARNESS_METRICS = ("step", "train_loss", "test_accuracy", "test_loss", "diverged_at")  # + alignment_angle_<layer>


def chunk_files(out_dir: str | os.PathLike) -> list[Path]:
    """Finished chunk files (temporaries, which start with a dot, are never listed)."""
    return sorted((Path(out_dir) / CHUNKS).glob("chunk-*.parquet"))


def chunk_path(out_dir: str | os.PathLike, chunk_id: str) -> Path:
    return Path(out_dir) / CHUNKS / f"chunk-{chunk_id}.parquet"


def checkpoint_dir(out_dir: str | os.PathLike, chunk_id: str) -> Path:
    return Path(out_dir).absolute() / CHECKPOINTS / chunk_id


def finished_run_ids(out_dir: str | os.PathLike) -> set[str]:
    """``run_id`` of every run in a finished chunk (reads only that column)."""
    finished: set[str] = set()
    for path in chunk_files(out_dir):
        finished.update(pq.read_table(path, columns=["run_id"]).column("run_id").to_pylist())
    return finished


def chunk_frame(chunk: Sequence[Run], metrics: dict[str, np.ndarray], dataset: str, optimizer: str) -> pd.DataFrame:
    """Tidy rows of one chunk's metrics ``[runs, evals, ...]``: run labels, traced hyperparameters, metrics."""
    group = chunk[0].group
    hparams = {name: np.array([dict(run.hparams)[name] for run in chunk]) for name, _ in chunk[0].hparams}
    frame = grid_to_frame(
        {k: np.asarray(v)[:, None] for k, v in metrics.items()}, hparams,
        dataset=dataset, rule=group.rule, rule_options=",".join(f"{k}={v}" for k, v in group.options),
        hidden=hidden_label(group.hidden), activation=group.activation, optimizer=optimizer,
    )
    run_index = frame.pop("hparam_index").to_numpy()
    frame["seed"] = np.array([run.seed for run in chunk])[run_index]
    frame.insert(0, "run_id", np.array([run.run_id for run in chunk])[run_index])
    return frame


def write_chunk(out_dir: str | os.PathLike, chunk_id: str, frame: pd.DataFrame) -> Path:
    return write_parquet(frame, chunk_path(out_dir, chunk_id))


def load_results(out_dir: str | os.PathLike, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Every finished run in ``out_dir`` as one tidy DataFrame (optionally only ``run_ids``).

    Rules with different hyperparameters have different columns; a column a run does not have is NaN.
    """
    frames = [pd.read_parquet(path) for path in chunk_files(out_dir)]
    if not frames:
        return pd.DataFrame(columns=[*RUN_COLUMNS, "step"])
    frame = pd.concat(frames, ignore_index=True)
    if run_ids is not None:
        frame = frame[frame["run_id"].isin(set(run_ids))].reset_index(drop=True)
    return frame


def is_metric(column: str) -> bool:
    """Whether ``column`` is something the harness measures (rather than a label of the run)."""
    return column in HARNESS_METRICS or column.startswith("alignment_angle_")


def run_level_columns(frame: pd.DataFrame) -> list[str]:
    """Labels of a run (rule, widths, hyperparameters, seed, ...): non-metric columns constant within every run."""
    constant = frame.groupby("run_id", sort=False).nunique(dropna=False).le(1).all()
    return [c for c in frame.columns if c != "run_id" and not is_metric(c) and bool(constant.get(c, False))]


def setting_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that name a hyperparameter setting: the run-level columns except ``seed``."""
    return [c for c in run_level_columns(frame) if c != "seed"]


def as_xarray(frame: pd.DataFrame):
    """An ``xarray.Dataset`` with dims ``(run_id, step)``: metrics as variables, per-run labels as coordinates.

    Group with the coordinates, e.g. ``ds.test_accuracy.groupby("rule").mean()``; columns that vary within a run
    (metrics, ``diverged_at``) become variables, columns constant within every run become ``run_id`` coordinates.
    """
    import xarray as xr

    run_columns = run_level_columns(frame)
    metric_columns = [c for c in frame.columns if c not in ("run_id", "step", *run_columns)]
    dataset = xr.Dataset.from_dataframe(frame.set_index(["run_id", "step"])[metric_columns])
    labels = frame.drop_duplicates("run_id").set_index("run_id")[run_columns]
    return dataset.assign_coords({c: ("run_id", labels[c].reindex(dataset["run_id"].values).to_numpy())
                                  for c in run_columns})
