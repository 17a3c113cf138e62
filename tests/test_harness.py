"""The vmapped supervised harness: determinism, grid shapes, chunking, divergence masking, a known result."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from rulelab.harness.compare import compare_rules
from rulelab.harness.run import run_grid, seed_keys
from rulelab.harness.train import TrainConfig, make_train, make_train_program
from rulelab.tasks.supervised import load_dataset

SMALL = TrainConfig(rule="feedback_alignment", hidden=(32,), steps=60, batch_size=16, eval_every=20)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_same_key_same_metrics_and_different_keys_differ(digits):
    train = jax.jit(make_train(SMALL, digits))
    hparams = {"learning_rate": 1e-3}
    first, second = train(jax.random.key(0), hparams), train(jax.random.key(0), hparams)
    other = train(jax.random.key(1), hparams)
    np.testing.assert_array_equal(first["test_accuracy"], second["test_accuracy"])
    np.testing.assert_array_equal(first["train_loss"], second["train_loss"])
    assert not np.array_equal(first["train_loss"], other["train_loss"])


def test_chunked_grid_matches_single_runs_and_seeds_do_not_depend_on_count(digits):
    program = make_train_program(SMALL, digits)
    hparams = {"learning_rate": [1e-3, 3e-3], "feedback_scale": [1.0, 0.5]}
    result = run_grid(program, hparams, num_seeds=3, num_chunks=3, progress=False)
    assert result.metrics["test_accuracy"].shape == (2, 3, 3)
    assert result.metrics["alignment_angle"].shape == (2, 3, 3, 2)
    train = jax.jit(make_train(SMALL, digits))
    single = train(seed_keys(3)[2], {"learning_rate": 3e-3, "feedback_scale": 0.5})
    np.testing.assert_allclose(result.metrics["train_loss"][1, 2], single["train_loss"], rtol=1e-4, atol=1e-5)
    fewer = run_grid(program, {"learning_rate": 1e-3, "feedback_scale": 1.0}, num_seeds=1, progress=False)
    np.testing.assert_allclose(fewer.metrics["train_loss"][0, 0], result.metrics["train_loss"][0, 0], rtol=1e-4)


def test_a_diverging_cell_is_frozen_and_reported_while_the_rest_finish(digits):
    config = dataclasses.replace(SMALL, rule="backprop", optimizer="sgd")
    program = make_train_program(config, digits)
    result = run_grid(program, {"learning_rate": [0.05, 1e38]}, num_seeds=2, progress=False)
    diverged_at = result.metrics["diverged_at"][:, :, -1]
    assert np.all(diverged_at[0] == -1)
    assert np.all(diverged_at[1] >= 0)
    assert np.all(np.isfinite(result.metrics["test_accuracy"]))
    final_params = jax.tree.leaves(result.final_state.params)
    assert all(np.all(np.isfinite(np.asarray(p))) for p in final_params)
    assert result.metrics["test_accuracy"][0, :, -1].min() > 0.5


def test_feedback_alignment_learns_digits_and_its_hidden_updates_align(digits, tmp_path):
    """Lillicrap et al. 2016: with random feedback the network learns and the hidden-layer update comes
    within 90° of the backprop gradient."""
    config = dataclasses.replace(SMALL, hidden=(64,), steps=600, batch_size=32, eval_every=200)
    frame, summary = compare_rules(digits, ["feedback_alignment"], config=config, num_seeds=2, out_dir=tmp_path,
                                   progress=False)
    row = summary["rules"]["feedback_alignment"]
    assert row["test_accuracy_mean"] > 0.85
    assert row["alignment_angle_deg"] < 85.0
    assert (tmp_path / "results.parquet").is_file() and (tmp_path / "learning_curves.png").is_file()
    assert set(frame["seed"]) == {0, 1}


def test_bad_configs_fail_in_python_before_compute(digits):
    with pytest.raises(ValueError, match="multiple of eval_every"):
        TrainConfig(steps=100, eval_every=30)
    with pytest.raises(ValueError, match="positive"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="valid: sgd, momentum, adam"):
        make_train(dataclasses.replace(SMALL, optimizer="rmsprop"), digits)(jax.random.key(0), {"learning_rate": 1.0})
