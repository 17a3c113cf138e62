"""Continual-learning suites, scenarios and the scan-over-tasks harness, with the known results it must show."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rulelab.harness.continual import ContinualConfig, build_chain, parse_method, run_continual
from rulelab.registry import UnknownRuleError
from rulelab.tasks.idx import write_idx
from rulelab.tasks.continual import (
    MASKED_LOGIT,
    SUITES,
    as_rates,
    load_continual_suite,
    rotation_map,
    scenario_layout,
    scenario_network,
    task_stream,
)


@pytest.fixture(scope="module")
def split_digits():
    return load_continual_suite("split-digits")


def test_split_suite_partitions_the_classes(split_digits):
    suite = split_digits
    assert suite.num_tasks == 5 and suite.classes_per_task == 2
    assert suite.task_names == ("0/1", "2/3", "4/5", "6/7", "8/9")
    assert int(suite.train_count.sum()) == len(suite.x_train)  # every training example in exactly one task
    rows = [set(suite.train_index[t, : suite.train_count[t]]) for t in range(5)]
    assert all(rows[a].isdisjoint(rows[b]) for a in range(5) for b in range(a + 1, 5))
    assert 0.0 <= suite.x_train.min() and suite.x_train.max() <= 1.0


def test_inputs_become_non_negative_rates():
    signed = np.array([[1.5, -2.0], [0.0, 3.0]], np.float32)
    train, test = as_rates(signed, -signed)
    np.testing.assert_array_equal(train, [[1.5, 0.0, 0.0, 2.0], [0.0, 3.0, 0.0, 0.0]])  # ON channels, then OFF
    np.testing.assert_array_equal(test, [[0.0, 2.0, 1.5, 0.0], [0.0, 0.0, 0.0, 3.0]])
    images = np.array([[0.0, 8.0], [16.0, 4.0]], np.float32)
    np.testing.assert_allclose(as_rates(images, images)[0], images / 16.0)


@pytest.mark.parametrize("scenario, outputs, context", [("task", 10, 5), ("domain", 2, 0), ("class", 10, 0)])
def test_scenario_labels_and_layout(split_digits, scenario, outputs, context):
    layout = scenario_layout(split_digits, scenario)
    assert (layout.num_outputs, layout.context_width) == (outputs, context)
    stream = task_stream(split_digits, scenario)
    batch = stream.sample(jax.random.key(0), jnp.full((64,), 3))  # task 3 holds digits 6 and 7
    expected = {"task": {6, 7}, "domain": {0, 1}, "class": {6, 7}}[scenario]
    assert set(np.asarray(batch.y).tolist()) <= expected
    assert batch.x.shape == (64, 64 + context)


def test_multi_head_network_masks_the_other_heads(split_digits):
    net = scenario_network(split_digits, "task", (16,))
    params = net.init(jax.random.key(0))
    batch = task_stream(split_digits, "task").sample(jax.random.key(1), jnp.full((8,), 2))
    logits, activity = net.apply(params, batch.x)
    assert np.all(np.asarray(logits[:, 4:6]) != MASKED_LOGIT)
    assert np.all(np.asarray(jnp.delete(logits, jnp.array([4, 5]), axis=1)) == MASKED_LOGIT)
    np.testing.assert_array_equal(activity.preactivations[-1], logits)


def test_permuted_suite_uses_fixed_permutations():
    suite = load_continual_suite("permuted-digits", num_tasks=3)
    index = suite.pixel_index[..., 0]
    np.testing.assert_array_equal(index[0], np.arange(64))  # the first task is the original data
    for t in range(3):
        np.testing.assert_array_equal(np.sort(index[t]), np.arange(64))
    assert not np.array_equal(index[1], index[2])
    stream = task_stream(suite, "domain")
    x = jnp.asarray(suite.x_test[:4])
    np.testing.assert_allclose(stream.inputs(x, jnp.full((4,), 2)), np.asarray(x)[:, index[2]])


def test_mnist_suites_read_the_users_files(tmp_path):
    """Split and rotated MNIST from IDX files in --data-dir (a tiny stand-in written here; nothing is downloaded)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split, count in (("train", 60), ("t10k", 20)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(count, dtype=np.uint8) % 10)
    split = load_continual_suite("split-mnist", data_dir=tmp_path)
    assert split.num_features == 784 and list(split.train_count) == [12] * 5 and list(split.test_count) == [4] * 5
    rotated = load_continual_suite("rotated-mnist", data_dir=tmp_path, num_tasks=3)
    assert rotated.pixel_index.shape == (3, 784, 4) and rotated.task_names == ("0°", "60°", "120°")
    stream = task_stream(rotated, "domain")
    image = jnp.asarray(rotated.x_test[:1])
    np.testing.assert_allclose(stream.inputs(image, jnp.zeros(1, jnp.int32)), image, atol=1e-6)  # task 0: 0°


def test_rotation_map_matches_a_clockwise_quarter_turn():
    image = np.random.default_rng(0).uniform(size=(8, 8)).astype(np.float32)
    index, weight = rotation_map(8, 90.0)
    rotated = np.sum(image.ravel()[index] * weight, axis=-1).reshape(8, 8)
    np.testing.assert_allclose(rotated, np.rot90(image, k=-1), atol=1e-5)  # clockwise as displayed
    index, weight = rotation_map(8, 0.0)
    np.testing.assert_allclose(np.sum(image.ravel()[index] * weight, axis=-1).reshape(8, 8), image, atol=1e-6)


def test_suite_names_and_errors():
    assert "split-mnist" in SUITES and "rotated-mnist" in SUITES and "rotated-mnist1d" not in SUITES
    with pytest.raises(ValueError, match="valid:"):
        load_continual_suite("split-cifar")
    with pytest.raises(ValueError, match="2 or 5 tasks"):
        load_continual_suite("split-digits", num_tasks=3)


def test_method_chains():
    assert parse_method("fine_tuning", "feedback_alignment").chain == ("feedback_alignment",)
    assert parse_method("joint").regime == "joint"
    assert parse_method("ewc", "feedback_alignment").chain == ("ewc", "feedback_alignment")
    assert parse_method("sleep_replay:experience_replay").chain == ("sleep_replay", "experience_replay", "backprop")
    with pytest.raises(ValueError, match="does not wrap"):
        parse_method("backprop:ewc")
    with pytest.raises(UnknownRuleError):
        parse_method("ewc:no_such_rule")
    with pytest.raises(TypeError, match="valid:"):
        build_chain(None, ("ewc", "backprop"), {"buffer_size": 10})


@pytest.fixture(scope="module")
def small_class_incremental(split_digits):
    """Fine-tuning and experience replay on class-incremental split digits (small network, 2 seeds)."""
    config = ContinualConfig(hidden=(64,), steps_per_task=150, rule_options=(("buffer_size", 200),))
    return run_continual(split_digits, "class", ["fine_tuning", "experience_replay"], config=config,
                         num_seeds=2, progress=False)


def _mean(result, method, column):
    return float(result.runs.loc[result.runs["rule"] == method, column].mean())


def test_fine_tuning_forgets_catastrophically(small_class_incremental):
    """The known result (van de Ven et al. 2022): class-incremental fine-tuning keeps only the last task."""
    accuracy = small_class_incremental.accuracy
    fine = accuracy[accuracy["rule"] == "fine_tuning"]
    diagonal = fine[fine["trained_task"] == fine["eval_task"]]["accuracy"].mean()
    assert diagonal > 0.9  # every task is learned ...
    assert _mean(small_class_incremental, "fine_tuning", "forgetting") > 0.85  # ... and then lost
    assert _mean(small_class_incremental, "fine_tuning", "average_accuracy") < 0.3  # about one task in five


def test_replay_beats_fine_tuning(small_class_incremental):
    replay = _mean(small_class_incremental, "experience_replay", "average_accuracy")
    fine = _mean(small_class_incremental, "fine_tuning", "average_accuracy")
    assert replay > fine + 0.4  # a 200-example buffer (14% of the data) keeps most of every task
    assert _mean(small_class_incremental, "experience_replay", "forgetting") < 0.3
