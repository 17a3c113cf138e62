"""Meta-gradients through the supervised harness agree with finite differences (feedback alignment on digits)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from rulelab.harness.train import TrainConfig
from rulelab.meta.objectives import in_log_space, make_heldout_objective, split_validation
from rulelab.tasks import load_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "meta_learn_feedback.py"


def load_script():
    spec = importlib.util.spec_from_file_location("meta_learn_feedback", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_meta_gradient_matches_central_differences_on_a_short_inner_loop():
    """d(final validation loss)/d(log feedback scale, log learning rate) through 40 SGD steps of feedback alignment.

    Central differences have truncation error O(h²) and float32 rounding error ~ε·L/h ≈ 1e-7·2/1e-2 = 2e-5, far
    below 1% of gradients of order 1e-2–1e-1, so 1% relative agreement tests the meta-gradient, not the check.
    The loop is unrolled with checkpointing (every 2 periods), so the checkpointed gradient is what is checked.
    """
    config = TrainConfig(rule="feedback_alignment", hidden=(16,), optimizer="sgd", steps=40, batch_size=32,
                         eval_every=10)
    _, objective = make_heldout_objective(config, load_dataset("digits"), checkpoint_every=2)
    meta_loss = in_log_space(objective, {})
    value_and_grad = jax.jit(jax.value_and_grad(meta_loss, has_aux=True))
    start = {"feedback_scale": jnp.log(1.0), "learning_rate": jnp.log(0.1)}
    key = jax.random.key(0)
    (loss, metrics), gradient = value_and_grad(start, key)
    assert 0.0 < float(loss) < 2.5 and set(metrics) >= {"test_accuracy", "validation_accuracy"}
    step = 1e-2
    for name in start:
        shifted = [value_and_grad({**start, name: start[name] + sign * step}, key)[0][0] for sign in (1.0, -1.0)]
        difference = float((shifted[0] - shifted[1]) / (2 * step))
        assert abs(difference) > 1e-3, (name, difference)  # a real slope, not a flat direction
        assert abs(float(gradient[name]) - difference) < 0.01 * abs(difference), (name, gradient[name], difference)


def test_validation_split_partitions_the_training_data():
    digits = load_dataset("digits")
    split = split_validation(digits, 0.2, seed=0)
    assert len(split.y_test) == round(0.2 * len(digits.y_train))

    def rows(*arrays):
        return sorted(row.tobytes() for array in arrays for row in array)

    # train + validation is exactly the original training set: nothing from the test split, nothing lost
    assert rows(split.x_train, split.x_test) == rows(digits.x_train)
    assert sorted(split.y_train.tolist() + split.y_test.tolist()) == sorted(digits.y_train.tolist())
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        split_validation(digits, 1.0)


def test_bad_arguments_fail_in_one_line(tmp_path, capsys):
    script = load_script()
    assert script.main(["--out", str(tmp_path), "--meta-parameters", "momentum"]) == 2
    assert capsys.readouterr().err.strip().endswith("valid: learning_rate, feedback_scale")
    assert script.main(["--out", str(tmp_path), "--rule", "backpropp"]) == 2
    assert "unknown rule 'backpropp'" in capsys.readouterr().err
    assert script.main(["--out", str(tmp_path), "--inner-steps", "30", "--eval-every", "20"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.slow
def test_full_experiment_improves_the_validation_loss(tmp_path):
    assert load_script().main(["--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["max_relative_error_at_smallest_step"] < 0.01
    start = summary["start"]["evaluation"]["validation_loss_mean"]
    assert summary["gradient"]["evaluation"]["validation_loss_mean"] < start
