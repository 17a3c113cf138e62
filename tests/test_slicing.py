"""Slices of a sweep run by independent processes merge into the unsliced sweep, and losses are detected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from rulelab.harness.results import grid_to_frame
from rulelab.harness.run import run_grid
from rulelab.harness.slicing import (
    IncompleteSweepError,
    SliceSpec,
    finished_slices,
    merge_slices,
    slice_bounds,
    slice_from_environment,
    slice_path,
    take_slice,
    write_slice,
)
from rulelab.harness.train import TrainConfig, make_train_program
from rulelab.tasks.supervised import load_dataset

TINY = TrainConfig(rule="feedback_alignment", hidden=(8,), steps=4, batch_size=8, eval_every=2)
GRID = {"learning_rate": [1e-3, 3e-3, 1e-2], "feedback_scale": [1.0, 0.5, 2.0]}
SEEDS = 2


def test_slice_specs_parse_and_reject_bad_text():
    assert SliceSpec.parse(" 3 / 8 ") == SliceSpec(3, 8) and str(SliceSpec(3, 8)) == "3/8"
    for bad in ("8/8", "-1/2", "1", "a/b"):
        with pytest.raises(ValueError, match="slice"):
            SliceSpec.parse(bad)


def test_slice_comes_from_rulelab_or_slurm_environment():
    assert slice_from_environment({"RULELAB_SLICE": "1/4"}) == SliceSpec(1, 4)
    slurm = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert slice_from_environment(slurm) == SliceSpec(2, 3)
    assert slice_from_environment({}) is None


@pytest.mark.parametrize("num_items, count", [(0, 3), (5, 5), (7, 3), (100, 8), (3, 7)])
def test_slices_cover_every_item_once_with_sizes_within_one(num_items, count):
    items = list(range(num_items))
    parts = [list(take_slice(items, SliceSpec(i, count))) for i in range(count)]
    assert sum(parts, []) == items
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert slice_bounds(num_items, SliceSpec(count - 1, count))[1] == num_items


def _frame(run_ids):
    return pd.DataFrame({"run_id": np.repeat(run_ids, 2), "step": np.tile([1, 2], len(run_ids))})


def test_merge_detects_missing_doubled_and_mixed_slices(tmp_path):
    write_slice(_frame([0, 1]), tmp_path, SliceSpec(0, 2))
    with pytest.raises(IncompleteSweepError, match="1 of 2 slices missing: 1"):
        merge_slices(tmp_path)
    write_slice(_frame([1, 2]), tmp_path, SliceSpec(1, 2))
    with pytest.raises(IncompleteSweepError, match="more than one slice: 1"):
        merge_slices(tmp_path)
    write_slice(_frame([2, 3]), tmp_path, SliceSpec(1, 2))  # the rerun of slice 1 replaces its file
    assert sorted(merge_slices(tmp_path)["run_id"].unique()) == [0, 1, 2, 3]
    with pytest.raises(IncompleteSweepError, match="expected runs have no results: 4"):
        merge_slices(tmp_path, expected_run_ids=range(5))
    write_slice(_frame([9]), tmp_path, SliceSpec(0, 3))
    with pytest.raises(IncompleteSweepError, match="different slicings"):
        merge_slices(tmp_path)
    assert len(finished_slices(tmp_path)) == 3


SLICE_SCRIPT = textwrap.dedent("""
    import json, sys
    from rulelab.harness.slicing import SliceSpec, run_grid_slice, slice_from_environment
    from rulelab.harness.train import TrainConfig, make_train_program
    from rulelab.tasks.supervised import load_dataset

    config, grid, seeds, out_dir = json.loads(sys.argv[1])
    program = make_train_program(TrainConfig(**config), load_dataset("digits"))
    run_grid_slice(program, grid, num_seeds=seeds, spec=slice_from_environment(), out_dir=out_dir,
                   rule=config["rule"], dataset="digits")
""")


def test_two_processes_write_slices_that_merge_into_the_whole_grid(tmp_path):
    config = {k: getattr(TINY, k) for k in ("rule", "hidden", "steps", "batch_size", "eval_every")}
    argument = json.dumps([config, GRID, SEEDS, str(tmp_path)])
    processes = [
        subprocess.Popen([sys.executable, "-c", SLICE_SCRIPT, argument],
                         env={**os.environ, "RULELAB_SLICE": f"{i}/2", "JAX_PLATFORMS": "cpu"})
        for i in range(2)
    ]
    assert [p.wait(timeout=300) for p in processes] == [0, 0]
    assert slice_path(tmp_path, SliceSpec(1, 2)).is_file()
    merged = merge_slices(tmp_path, expected_run_ids=range(3 * SEEDS))

    program = make_train_program(TINY, load_dataset("digits"))
    whole = grid_to_frame(run_grid(program, GRID, num_seeds=SEEDS, progress=False).metrics, GRID,
                          rule="feedback_alignment", dataset="digits")
    keys = ["hparam_index", "seed", "step"]
    merged = merged.sort_values(keys).reset_index(drop=True)
    whole = whole.sort_values(keys).reset_index(drop=True)
    assert len(merged) == len(whole) == 3 * SEEDS * TINY.num_evals
    assert set(whole.columns) <= set(merged.columns)
    pd.testing.assert_frame_equal(merged[keys + ["learning_rate", "feedback_scale", "test_accuracy"]],
                                  whole[keys + ["learning_rate", "feedback_scale", "test_accuracy"]],
                                  check_dtype=False)
    np.testing.assert_allclose(merged["train_loss"], whole["train_loss"], rtol=1e-5, atol=1e-6)
    assert sorted(merged.groupby("slice_index")["run_id"].nunique()) == [3, 3]
