"""Meta-objectives on the supervised harness: the loss a whole training run ends with, on held-out data.

The meta-objective must be differentiable, so it is the final mean cross-entropy, not accuracy: accuracy is a
step function of the parameters (an arg-max count), its derivative is zero almost everywhere and undefined at the
jumps, so ``jax.grad`` of it carries no signal. Accuracy is reported alongside, never optimised.

Meta-learning against the test set would leak it into the rule's hyperparameters, so the objective holds out a
validation split of the *training* data (the harness trains on the rest) and the test split is only reported.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rulelab.core import Array, PRNGKey, accuracy, softmax_cross_entropy
from rulelab.harness.train import Hparams, TrainConfig, TrainProgram
from rulelab.meta.inner import harness_final_state
from rulelab.tasks.supervised import Dataset


def split_validation(dataset: Dataset, fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The training data split into train (kept as train) and validation (put in the test slot).

    The harness then trains on the reduced train split and its own "test" metrics are validation metrics.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(dataset.y_train))
    num_validation = int(round(fraction * len(order)))
    validation, train = order[:num_validation], order[num_validation:]
    return Dataset(f"{dataset.name}_validation", dataset.x_train[train], dataset.y_train[train],
                   dataset.x_train[validation], dataset.y_train[validation], dataset.num_classes)


def make_heldout_objective(
    config: TrainConfig,
    dataset: Dataset,
    *,
    validation_fraction: float = 0.2,
    split_seed: int = 0,
    truncation: int | None = None,
    checkpoint_every: int | None = None,
) -> tuple[TrainProgram, Callable[[PRNGKey, Hparams], tuple[Array, dict[str, Array]]]]:
    """``objective(key, hparams) -> (validation_loss, metrics)``: train on part of the training data, score the rest.

    ``metrics`` holds ``validation_loss``, ``validation_accuracy``, ``test_loss`` and ``test_accuracy`` of the final
    parameters (the test split is never part of the objective). ``truncation`` / ``checkpoint_every`` are in
    evaluation periods of ``config.eval_every`` steps (``rulelab.meta.inner.harness_final_state``).
    """
    split = split_validation(dataset, validation_fraction, split_seed)
    program, final_state = harness_final_state(config, split, truncation=truncation, checkpoint_every=checkpoint_every)
    held_out = {
        "validation": (jnp.asarray(split.x_test), jnp.asarray(split.y_test)),
        "test": (jnp.asarray(dataset.x_test), jnp.asarray(dataset.y_test)),
    }

    def objective(key: PRNGKey, hparams: Hparams) -> tuple[Array, dict[str, Array]]:
        params = final_state(key, hparams).params
        metrics = {}
        for name, (x, y) in held_out.items():
            logits, _ = program.net.apply(params, x)
            metrics[f"{name}_loss"] = softmax_cross_entropy(logits, y)
            metrics[f"{name}_accuracy"] = accuracy(logits, y)
        return metrics["validation_loss"], metrics

    return program, objective


def in_log_space(
    objective: Callable[[PRNGKey, Hparams], tuple[Array, dict[str, Array]]], fixed: dict[str, Any]
) -> Callable[[dict[str, Array], PRNGKey], tuple[Array, dict[str, Array]]]:
    """``meta_loss(log_params, key)``: the objective of ``{**fixed, **exp(log_params)}``.

    Positive hyperparameters (scales, learning rates) are meta-learned as logarithms so no step can make them
    negative, and a step changes them by a factor rather than an amount.
    """

    def meta_loss(log_params: dict[str, Array], key: PRNGKey) -> tuple[Array, dict[str, Array]]:
        return objective(key, {**fixed, **jax.tree.map(jnp.exp, log_params)})

    return meta_loss
