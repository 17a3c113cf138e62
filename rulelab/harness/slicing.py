"""Beyond one machine: a sweep's run table cut into slices that independent processes run without coordination.

Every process builds the same run table from the same configuration, keeps its own slice (``take_slice``), trains
it, and writes one file named after the slice into a shared results folder (``write_slice``); files are written
under a temporary name and renamed, so readers never see half a file. ``merge_slices`` reads them back and checks
that nothing is lost: every slice present, no run twice, every expected run there.

    RULELAB_SLICE=3/8 python my_sweep.py      # any launcher: this process runs slice 3 of 8
    sbatch --array=0-7 my_sweep.sh            # SLURM job arrays: the task id and count are read directly

A run's key depends only on its seed index (``rulelab.harness.run.keys_for_seeds``), so a sliced sweep computes
the same runs as the unsliced one. For a single program spanning several hosts instead, see docs/performance.md
(``jax.distributed.initialize``; the ``runs`` mesh then covers every host's devices).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence, TypeVar

import numpy as np
import pandas as pd

from rulelab.harness.results import grid_to_frame, write_parquet
from rulelab.harness.run import as_grid, grid_run_table, keys_for_seeds, run_runs
from rulelab.harness.train import TrainProgram

T = TypeVar("T")
SLICE_FOLDER = "slices"
SLICE_PATTERN = re.compile(r"slice-(\d+)-of-(\d+)\.parquet")


class IncompleteSweepError(RuntimeError):
    """Slices are missing, disagree on the slice count, or hold the same run twice."""


class SliceSpec(NamedTuple):
    """Slice ``index`` (0-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> SliceSpec:
        """``"3/8"`` -> ``SliceSpec(3, 8)``."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ValueError(f"a slice is written INDEX/COUNT (e.g. 0/4), got {text!r}")
        spec = cls(int(match.group(1)), int(match.group(2)))
        if not 0 <= spec.index < spec.count:
            raise ValueError(f"slice index must be in 0..{spec.count - 1}, got {text!r}")
        return spec

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def slice_from_environment(environ: Mapping[str, str] = os.environ) -> SliceSpec | None:
    """``RULELAB_SLICE=i/n``, else a SLURM job array's task (id minus the array's first id, of the task count)."""
    if "RULELAB_SLICE" in environ:
        return SliceSpec.parse(environ["RULELAB_SLICE"])
    if "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", 0))
        return SliceSpec.parse(f"{int(environ['SLURM_ARRAY_TASK_ID']) - first}/{environ['SLURM_ARRAY_TASK_COUNT']}")
    return None


def slice_bounds(num_items: int, spec: SliceSpec) -> tuple[int, int]:
    """Start and stop of slice ``spec`` in a table of ``num_items``: contiguous, sizes differing by at most one.

    Contiguous slices keep runs that share a compiled program together, so each process compiles few programs.
    """
    return spec.index * num_items // spec.count, (spec.index + 1) * num_items // spec.count


def take_slice(items: Sequence[T], spec: SliceSpec) -> Sequence[T]:
    """This process's share of ``items`` (any sequence: a run list, an array of run ids)."""
    start, stop = slice_bounds(len(items), spec)
    return items[start:stop]


def slice_path(out_dir: str | os.PathLike, spec: SliceSpec) -> Path:
    return Path(out_dir) / SLICE_FOLDER / f"slice-{spec.index:05d}-of-{spec.count:05d}.parquet"


def write_slice(frame: pd.DataFrame, out_dir: str | os.PathLike, spec: SliceSpec) -> Path:
    """Write one slice's tidy results atomically; independent processes never touch each other's files."""
    return write_parquet(frame, slice_path(out_dir, spec))


def finished_slices(out_dir: str | os.PathLike) -> list[SliceSpec]:
    """Slices whose file is in ``out_dir``."""
    folder = Path(out_dir) / SLICE_FOLDER
    matches = (SLICE_PATTERN.fullmatch(p.name) for p in folder.glob("slice-*.parquet")) if folder.is_dir() else ()
    return sorted(SliceSpec(int(m.group(1)), int(m.group(2))) for m in matches if m)


def merge_slices(
    out_dir: str | os.PathLike, *, expected_run_ids: Iterable[Any] | None = None, id_column: str = "run_id"
) -> pd.DataFrame:
    """Every slice's rows in one frame, after checking that nothing is lost or doubled.

    Raises ``IncompleteSweepError`` when slice files disagree on the slice count, a slice is missing, a run
    appears in two slices, or (given ``expected_run_ids``) an expected run has no rows.
    """
    slices = finished_slices(out_dir)
    if not slices:
        raise IncompleteSweepError(f"no slice files in {Path(out_dir) / SLICE_FOLDER}")
    counts = {s.count for s in slices}
    if len(counts) > 1:
        raise IncompleteSweepError(f"slice files from different slicings (counts {sorted(counts)}) in {out_dir}")
    count = counts.pop()
    missing = sorted(set(range(count)) - {s.index for s in slices})
    if missing:
        raise IncompleteSweepError(f"{len(missing)} of {count} slices missing: {', '.join(map(str, missing))}")
    frames = [pd.read_parquet(slice_path(out_dir, s)).assign(slice_index=s.index) for s in slices]
    owners = pd.concat([f[[id_column, "slice_index"]].drop_duplicates() for f in frames])
    doubled = owners[id_column][owners[id_column].duplicated()].unique()
    if len(doubled):
        raise IncompleteSweepError(f"runs in more than one slice: {', '.join(map(str, doubled[:10]))}")
    merged = pd.concat(frames, ignore_index=True)
    if expected_run_ids is not None:
        absent = sorted(set(expected_run_ids) - set(merged[id_column]))
        if absent:
            raise IncompleteSweepError(f"{len(absent)} expected runs have no results: "
                                       f"{', '.join(map(str, absent[:10]))}")
    return merged


def run_grid_slice(
    program: TrainProgram,
    hparams: dict[str, Any],
    *,
    num_seeds: int,
    spec: SliceSpec,
    out_dir: str | os.PathLike,
    base_seed: int = 0,
    progress: bool = False,
    **labels: Any,
) -> Path:
    """Train slice ``spec`` of the seeds × hyperparameters grid and write its tidy frame (with ``run_id``).

    ``run_id`` is the run's position in the grid's table (hyperparameter settings outer, seeds inner); the frame
    has the same columns as ``grid_to_frame`` gives for the unsliced grid, plus ``run_id``.
    """
    grid = as_grid(hparams)
    hparam_index, seed_index = grid_run_table(grid, num_seeds)
    run_ids = np.asarray(take_slice(np.arange(len(hparam_index)), spec))
    if len(run_ids) == 0:
        return write_slice(pd.DataFrame({"run_id": pd.Series([], dtype=np.int64)}), out_dir, spec)
    columns = {k: np.asarray(v)[hparam_index[run_ids]] for k, v in grid.items()}
    result = run_runs(program, keys_for_seeds(seed_index[run_ids], base_seed), columns, keep_state=False,
                      progress=progress, description=f"slice {spec}")
    # one "setting" per run, then the grid's own indices restored
    metrics = {k: v[:, None] for k, v in result.metrics.items()}
    frame = grid_to_frame(metrics, columns, **labels)
    frame["seed"] = np.repeat(seed_index[run_ids], program.num_evals)
    frame["hparam_index"] = np.repeat(hparam_index[run_ids], program.num_evals)
    frame.insert(0, "run_id", np.repeat(run_ids, program.num_evals))
    return write_slice(frame, out_dir, spec)
