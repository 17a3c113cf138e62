"""Inner loops: a whole training run as a differentiable function of the rule's (meta-)parameters.

Two kinds share ``unroll`` (and so its truncation and checkpointing):

- ``train_with_rule``: any ``LearningRule`` on a batch sampler with plain SGD, ``W ← W − η·updates``. Used for
  unsupervised or modulated local rules (the Oja problem) where the supervised harness does not apply.
- ``harness_final_state``: the supervised harness itself (``rulelab.harness.make_train_program``), unrolled one
  evaluation period (``config.eval_every`` steps) at a time, so its ``hparams`` (the optimizer's learning rate
  and every numeric rule hyperparameter) are the meta-parameters. Truncation and checkpointing here count in
  evaluation periods.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from rulelab.core import LearningRule, Params, PRNGKey
from rulelab.harness.train import Hparams, TrainConfig, TrainProgram, TrainState, make_train_program
from rulelab.meta.unroll import unroll
from rulelab.tasks.supervised import Dataset


def train_with_rule(
    rule: LearningRule,
    params: Params,
    sample_batch: Callable[[PRNGKey], Any],
    key: PRNGKey,
    *,
    steps: int,
    learning_rate: Any,
    constrain: Callable[[Params], Params] | None = None,
    truncation: int | None = None,
    checkpoint_every: int | None = None,
) -> tuple[Params, Any]:
    """Train ``params`` for ``steps`` SGD steps on the rule's updates; returns the final ``(params, rule_state)``.

    ``constrain`` (e.g. clipping weights to a bounded range) is applied to the parameters after every step.
    """
    init_key, run_key = jax.random.split(key)

    def step(carry, step_key):
        params, rule_state = carry
        batch_key, rule_key = jax.random.split(step_key)
        updates, rule_state, _ = rule.update(params, rule_state, sample_batch(batch_key), key=rule_key)
        params = jax.tree.map(lambda p, u: p - learning_rate * u, params, updates)
        return (params if constrain is None else constrain(params)), rule_state

    return unroll(
        step, (params, rule.init(init_key, params)), jax.random.split(run_key, steps),
        truncation=truncation, checkpoint_every=checkpoint_every,
    )


def harness_final_state(
    config: TrainConfig,
    dataset: Dataset,
    *,
    truncation: int | None = None,
    checkpoint_every: int | None = None,
) -> tuple[TrainProgram, Callable[[PRNGKey, Hparams], TrainState]]:
    """The harness program and ``final_state(key, hparams)``: one whole run, differentiable in ``hparams``.

    ``truncation`` / ``checkpoint_every`` are in evaluation periods of ``config.eval_every`` steps.
    """
    program = make_train_program(config, dataset)

    def final_state(key: PRNGKey, hparams: Hparams) -> TrainState:
        def period(state: TrainState, _) -> TrainState:
            return program.run(state, hparams, num_evals=1)[0]

        return unroll(
            period, program.init(key, hparams), length=program.num_evals,
            truncation=truncation, checkpoint_every=checkpoint_every,
        )

    return program, final_state
