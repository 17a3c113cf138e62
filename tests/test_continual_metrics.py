"""Continual-learning metrics on hand-made accuracy matrices R[i, j] (accuracy on task j after training task i)."""

from __future__ import annotations

import numpy as np
import pytest

from rulelab.harness.continual import (
    average_accuracy,
    backward_transfer,
    continual_metrics,
    forgetting,
    forward_transfer,
)

# Three tasks; task 0 peaks after task 1 (0.92) before dropping, task 2 is above chance before it is trained.
R = np.array([
    [0.90, 0.10, 0.30],
    [0.92, 0.95, 0.25],
    [0.70, 0.85, 0.90],
])
INITIAL = np.array([0.10, 0.15, 0.20])


def test_worked_example():
    assert float(average_accuracy(R)) == pytest.approx((0.70 + 0.85 + 0.90) / 3)
    # forgetting uses the best accuracy after learning (0.92 for task 0), not the accuracy right after it (0.90)
    assert float(forgetting(R)) == pytest.approx(((0.92 - 0.70) + (0.95 - 0.85)) / 2)
    assert float(backward_transfer(R)) == pytest.approx(((0.70 - 0.90) + (0.85 - 0.95)) / 2)
    assert float(forward_transfer(R, INITIAL)) == pytest.approx(((0.10 - 0.15) + (0.25 - 0.20)) / 2, abs=1e-6)


@pytest.mark.parametrize("num_tasks", [2, 5])
def test_catastrophic_forgetting_matrix(num_tasks):
    """Each task learned perfectly and lost completely at the next: ACC = 1/T, forgetting = 1, BWT = -1."""
    matrix = np.eye(num_tasks)
    assert float(average_accuracy(matrix)) == pytest.approx(1 / num_tasks)
    assert float(forgetting(matrix)) == pytest.approx(1.0)
    assert float(backward_transfer(matrix)) == pytest.approx(-1.0)


def test_no_forgetting_when_accuracies_never_drop():
    rng = np.random.default_rng(0)
    increments = rng.uniform(0.0, 0.05, (4, 4))
    matrix = np.minimum(np.cumsum(increments, axis=0) + 0.5, 1.0)  # every column non-decreasing down the rows
    assert float(forgetting(matrix)) <= 0.0  # still improving at the end: negative forgetting
    assert float(backward_transfer(matrix)) >= 0.0
    constant = np.tile(rng.uniform(size=4), (4, 1))
    assert float(forgetting(constant)) == pytest.approx(0.0, abs=1e-6)
    assert float(backward_transfer(constant)) == pytest.approx(0.0, abs=1e-6)


def test_forgetting_ignores_rows_before_a_task_is_learned():
    """A high accuracy before training on a task (row i < j) is not something that can be forgotten."""
    matrix = np.array([[0.9, 0.99], [0.9, 0.9]])
    assert float(forgetting(matrix)) == pytest.approx(0.0)


def test_forward_transfer_is_zero_against_its_own_reference():
    initial = np.concatenate([[0.0], np.diagonal(R, offset=1)])
    assert float(forward_transfer(R, initial)) == pytest.approx(0.0, abs=1e-6)


def test_batched_matrices_match_one_at_a_time():
    rng = np.random.default_rng(1)
    matrices = rng.uniform(size=(3, 2, 4, 4))  # [settings, seeds, tasks, tasks]
    initial = rng.uniform(size=(3, 2, 4))
    batched = continual_metrics(matrices, initial)
    for index in np.ndindex(3, 2):
        single = continual_metrics(matrices[index], initial[index])
        for name, value in single.items():
            assert float(batched[name][index]) == pytest.approx(float(value), abs=1e-6)
