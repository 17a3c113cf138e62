"""The supervised training harness, built like PureJaxRL: Python-side setup returns pure, jittable functions.

``make_train(config, dataset)`` returns ``train(key, hparams) -> metrics``; ``jit(vmap(vmap(train)))`` runs a whole
seeds × hyperparameters grid as one compiled program. Every number in ``hparams`` is a traced array:
``"learning_rate"`` goes to the optax optimizer, every other entry to the rule (``make_rule(name, net, **rest)``),
so sweeping a rule's scale or decay never recompiles.

Steps are a ``lax.scan``; every ``eval_every`` steps the harness records the mean train loss, test accuracy and
loss, and per-layer angles between the rule's update and the backprop gradient on the same batch. A run whose
loss or parameters become non-finite is frozen at that step and reported through ``diverged_at`` (−1 = never),
so one diverging cell never takes a sweep down.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rulelab.core import (
    Array,
    Batch,
    Params,
    PRNGKey,
    accuracy,
    angle_degrees,
    softmax_cross_entropy,
    tree_all_finite,
)
from rulelab.nets.mlp import Network, mlp
from rulelab.registry import make_rule
from rulelab.tasks.supervised import Dataset

Hparams = dict[str, Array]

OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": lambda learning_rate: optax.sgd(learning_rate, momentum=0.9),
    "adam": optax.adam,
}


def make_optimizer(name: str, learning_rate: Any) -> optax.GradientTransformation:
    """An optax optimizer by name; ``learning_rate`` may be a traced array."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](learning_rate)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static (structural) settings of one supervised training program; numbers to sweep go in ``hparams``."""

    rule: str = "backprop"
    rule_options: tuple[tuple[str, Any], ...] = ()  # static rule options, e.g. (("variant", "uniform"),)
    hidden: tuple[int, ...] = (128, 128)
    activation: str = "tanh"
    optimizer: str = "adam"
    steps: int = 3000
    batch_size: int = 32
    eval_every: int = 100

    def __post_init__(self):
        for field in ("steps", "batch_size", "eval_every"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)}")
        if self.steps % self.eval_every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of eval_every ({self.eval_every})")

    @property
    def num_evals(self) -> int:
        return self.steps // self.eval_every


def default_hparams(config: TrainConfig) -> dict[str, float]:
    """The hyperparameters a run uses when none are swept."""
    return {"learning_rate": 0.05 if config.optimizer == "sgd" else 1e-3}


class TrainState(NamedTuple):
    params: Params
    rule_state: Any
    opt_state: Any
    key: PRNGKey
    step: Array  # [] int32
    diverged_at: Array  # [] int32, step at which the run went non-finite, -1 if it never did


class TrainProgram(NamedTuple):
    """Pure pieces of a training run, so a host loop can drive it in chunks (with a progress bar)."""

    init: Callable[[PRNGKey, Hparams], TrainState]
    run: Callable[..., tuple[TrainState, dict[str, Array]]]  # run(state, hparams, *, num_evals)
    num_evals: int
    net: Network


def _split_hparams(hparams: Hparams) -> tuple[Array, dict[str, Array]]:
    rule_hparams = {k: v for k, v in hparams.items() if k != "learning_rate"}
    return hparams["learning_rate"], rule_hparams


def make_train_program(config: TrainConfig, dataset: Dataset) -> TrainProgram:
    """Set up data, network, rule and optimizer for ``config``; return the pure ``init`` / ``run`` pieces."""
    net = mlp((dataset.num_features, *config.hidden, dataset.num_classes), config.activation)
    make_rule(config.rule, net, **dict(config.rule_options))  # fail here, in Python, on a bad name or option
    x_train, y_train = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    x_test, y_test = jnp.asarray(dataset.x_test), jnp.asarray(dataset.y_test)
    num_train = x_train.shape[0]

    def build(hparams: Hparams):
        learning_rate, rule_hparams = _split_hparams(hparams)
        rule = make_rule(config.rule, net, **dict(config.rule_options), **rule_hparams)
        return rule, make_optimizer(config.optimizer, learning_rate)

    def sample_batch(key: PRNGKey) -> Batch:
        index = jax.random.randint(key, (config.batch_size,), 0, num_train)
        return Batch(x_train[index], y_train[index])

    def init(key: PRNGKey, hparams: Hparams) -> TrainState:
        rule, optimizer = build(hparams)
        net_key, rule_key, run_key = jax.random.split(key, 3)
        params = net.init(net_key)
        return TrainState(params, rule.init(rule_key, params), optimizer.init(params), run_key,
                          jnp.zeros((), jnp.int32), -jnp.ones((), jnp.int32))

    def run(state: TrainState, hparams: Hparams, *, num_evals: int) -> tuple[TrainState, dict[str, Array]]:
        rule, optimizer = build(hparams)

        def train_step(state: TrainState, _):
            key, batch_key, rule_key = jax.random.split(state.key, 3)
            updates, rule_state, rule_metrics = rule.update(
                state.params, state.rule_state, sample_batch(batch_key), key=rule_key
            )
            steps, opt_state = optimizer.update(updates, state.opt_state, state.params)
            params = optax.apply_updates(state.params, steps)
            loss = rule_metrics["loss"]
            finite = jnp.isfinite(loss) & tree_all_finite(params)
            healthy = finite & (state.diverged_at < 0)
            proposed = (params, rule_state, opt_state)
            kept = jax.tree.map(
                lambda new, old: jnp.where(healthy, new, old), proposed,
                (state.params, state.rule_state, state.opt_state),
            )
            diverged_at = jnp.where((state.diverged_at < 0) & ~finite, state.step, state.diverged_at)
            return TrainState(*kept, key, state.step + 1, diverged_at), loss

        def evaluate(state: TrainState, _):
            state, losses = jax.lax.scan(train_step, state, None, length=config.eval_every)
            logits, _ = net.apply(state.params, x_test)
            probe = sample_batch(jax.random.fold_in(state.key, 1))
            rule_updates, _, _ = rule.update(state.params, state.rule_state, probe, key=state.key)
            exact = jax.grad(lambda p: softmax_cross_entropy(net.apply(p, probe.x)[0], probe.y))(state.params)
            angles = jnp.stack([angle_degrees(u["kernel"], g["kernel"]) for u, g in zip(rule_updates, exact)])
            metrics = {
                "step": state.step,
                "train_loss": jnp.mean(losses),
                "test_accuracy": accuracy(logits, y_test),
                "test_loss": softmax_cross_entropy(logits, y_test),
                "alignment_angle": angles,  # [layers] degrees
                "diverged_at": state.diverged_at,
            }
            return state, metrics

        return jax.lax.scan(evaluate, state, None, length=num_evals)

    return TrainProgram(init, run, config.num_evals, net)


def make_train(config: TrainConfig, dataset: Dataset) -> Callable[[PRNGKey, Hparams], dict[str, Array]]:
    """``train(key, hparams) -> metrics`` (each metric ``[num_evals, ...]``): one whole run, pure and jittable."""
    program = make_train_program(config, dataset)

    def train(key: PRNGKey, hparams: Hparams) -> dict[str, Array]:
        _, metrics = program.run(program.init(key, hparams), hparams, num_evals=program.num_evals)
        return metrics

    return train


def vmap_grid(fn: Callable, *, state_in: bool) -> Callable:
    """``fn(x, hparams)`` vmapped over seeds (inner) and hyperparameter settings (outer).

    With ``state_in`` the first argument carries both axes ``[hparams, seeds, ...]``; otherwise it is a key array
    ``[seeds]`` shared by every hyperparameter setting (common random numbers across the grid).
    """
    over_seeds = jax.vmap(fn, in_axes=(0, None))
    return jax.vmap(over_seeds, in_axes=(0 if state_in else None, 0))


def run_program_chunk(program: TrainProgram, num_evals: int) -> Callable:
    """``jit(vmap(vmap(run)))`` for ``num_evals`` evaluation periods, donating the incoming state."""
    return jax.jit(vmap_grid(partial(program.run, num_evals=num_evals), state_in=True), donate_argnums=0)
