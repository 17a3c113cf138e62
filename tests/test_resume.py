"""Interrupted sweeps resume: a killed sweep loses no finished chunk, a checkpointed chunk continues exactly."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import numpy as np
import pytest

from rulelab.harness.checkpoint import SegmentTrainer, train_runs
from rulelab.harness.run import keys_for_seeds
from rulelab.harness.train import TrainConfig, make_train_program
from rulelab.sweep import load_config, load_results, validate
from rulelab.sweep.plan import chunk_id, make_chunks, plan_sweep
from rulelab.sweep.store import CHECKPOINTS, chunk_files
from rulelab.tasks import load_dataset

TWO_GROUPS = """
name = "killed"
seeds = 2
[network]
hidden = [[8], [12]]
[training]
optimizer = "sgd"
steps = 100
eval_every = 10
[grid]
learning_rate = [0.1]
[[rules]]
name = "backprop"
[execution]
checkpoint_every = 1
"""


class Interrupted(Exception):
    """Stands in for a crash in the middle of a chunk."""


def committed_checkpoints(out, chunk) -> list:
    """Steps of ``chunk`` orbax has finished writing (it renames a temporary folder to the step number)."""
    return [p for p in (out / CHECKPOINTS / chunk).glob("*") if p.name.isdigit()]


def test_killed_sweep_keeps_finished_chunks_and_resumes_the_interrupted_one(tmp_path):
    """Kill the sweep while its second group trains (after a checkpoint), then rerun the same command."""
    config = tmp_path / "sweep.toml"
    config.write_text(textwrap.dedent(TWO_GROUPS))
    second = chunk_id(list(make_chunks(plan_sweep(validate(load_config(config))), 32).values())[1][0])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rulelab.cli", "sweep", str(config), "--out", str(out)]
    process = subprocess.Popen([*command, "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not committed_checkpoints(out, second) and process.poll() is None:
        assert time.monotonic() < deadline, "the sweep never reached its second group"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # up to 9 checkpointed segments to go: this lands mid-chunk
    process.wait()
    survivors = chunk_files(out)
    assert len(survivors) == 1, "the sweep should have been killed inside its second chunk"
    before = {p: p.stat().st_mtime_ns for p in survivors}
    assert load_results(out)["run_id"].nunique() == 2

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "4 runs in 2 compiled groups; 2 already finished, 2 to train in 1 chunks" in rerun.stderr
    assert "resumed from its checkpoint at evaluation" in rerun.stderr
    assert "trained 2 runs, reused 2 finished ones" in rerun.stdout
    assert "4/4" in rerun.stderr  # the progress bar counts runs done / total
    assert {p: p.stat().st_mtime_ns for p in survivors} == before  # a finished chunk is never rewritten
    frame = load_results(out)
    assert frame["run_id"].nunique() == 4 and len(frame) == 4 * 10
    assert set(frame["hidden"]) == {"8", "12"}
    assert (frame.groupby("run_id")["step"].max() == 100).all()
    assert not list(out.glob("chunks/.*")) and not any((out / CHECKPOINTS).iterdir())


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_checkpointed_runs_resume_exactly_where_they_stopped(tmp_path, digits):
    program = make_train_program(
        TrainConfig(rule="feedback_alignment", hidden=(8,), optimizer="sgd", steps=40, eval_every=10), digits)
    trainer = SegmentTrainer.build(program, every_evals=1)
    keys = keys_for_seeds([0, 1, 2], 0)
    hparams = {"learning_rate": jnp.array([0.05, 0.1, 0.2]), "feedback_scale": jnp.array([1.0, 0.5, 2.0])}
    reference = train_runs(trainer, keys, hparams)

    def crash_after_two(evals_done):
        if evals_done == 2:
            raise Interrupted

    directory = tmp_path / "checkpoint"
    with pytest.raises(Interrupted):
        train_runs(trainer, keys, hparams, checkpoint_dir=directory, on_segment=crash_after_two)
    resumed = train_runs(trainer, keys, hparams, checkpoint_dir=directory)
    assert reference.resumed_at == 0 and resumed.resumed_at == 2
    for name, values in reference.metrics.items():
        np.testing.assert_array_equal(resumed.metrics[name], values, err_msg=name)
    assert np.all(reference.metrics["step"] == np.array([10, 20, 30, 40]))
