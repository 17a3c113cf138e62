"""The networks the benchmarks train, each as a harness ``TrainProgram`` plus the FLOPs one training example costs.

- ``digits_mlp``: rulelab's default, MLP 64-128-128-10 (tanh) on scikit-learn digits, batch 32, Adam.
- ``mnist_mlp``: MLP 784-256-256-10 (tanh) on MNIST-shaped random data (10 000 × 784 pixels, 10 classes), batch 32.
- ``recurrent_agent``: ``rulelab.nets.recurrent.lstm_agent`` (48 LSTM units, 2 actions, 5 inputs as in Wang et al.'s
  bandit agent: previous action one-hot, previous reward, trial index) trained by backprop through time on
  random sequences (8 episodes × 25 trials per step; policy cross-entropy + ½ squared value error). The meta-RL
  learner itself (A2C on bandits) is measured by ``benchmarks/meta_rl_throughput.py``; here the agent's network
  is trained the same way for every framework, so the comparison isolates network + rule + optimizer.

FLOPs are *model FLOPs* counted from matrix products: per example a layer with ``P = fan_in · fan_out`` weights
costs ``2P`` forward, ``2P`` for its weight update and ``2P`` to send the error down (not for the input layer).
Rules that do extra work (predictive coding's inference loop) are credited with the same count, so their GFLOP/s
reads as "backprop-equivalent work per second".
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rulelab.core import EmptyState, softmax_cross_entropy, tree_all_finite
from rulelab.harness.train import TrainConfig, TrainProgram, TrainState, make_optimizer, make_train_program
from rulelab.nets.recurrent import lstm_agent, unroll
from rulelab.tasks.supervised import Dataset, load_dataset

BATCH_SIZE = 32
TEST_EXAMPLES = 32  # the harness evaluates once per measured call; a small test set keeps that overhead small
LEARNING_RATE = 1e-3


class SequenceData(NamedTuple):
    inputs: jax.Array  # [episodes, trials, inputs]
    actions: jax.Array  # [episodes, trials] int32 target actions
    returns: jax.Array  # [episodes, trials] value targets


class Workload(NamedTuple):
    name: str
    description: str
    make_program: Callable[[str, int], TrainProgram]  # (rule, steps) -> program whose run(num_evals=1) does steps
    rules: tuple[str, ...] | None  # rules it supports (None: every supervised-MLP rule)
    flops_per_example: float
    examples_per_step: int
    layer_sizes: tuple[int, ...]
    data: Dataset | SequenceData  # what the program samples its batches from (the PyTorch peer uses the same)


def mlp_training_flops(sizes: tuple[int, ...]) -> float:
    """Model FLOPs of one training example through an MLP: 6P per layer, less 2P for the input layer's error."""
    weights = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 6.0 * sum(weights) - 2.0 * weights[0]


def _small_test_split(dataset: Dataset) -> Dataset:
    return dataset._replace(x_test=dataset.x_test[:TEST_EXAMPLES], y_test=dataset.y_test[:TEST_EXAMPLES])


def mnist_shaped_data(num_train: int = 10_000, seed: int = 0) -> Dataset:
    """Random pixels in [0, 1] and random labels, shaped like MNIST (no file needed; throughput only)."""
    rng = np.random.default_rng(seed)
    x = rng.random((num_train + TEST_EXAMPLES, 784), dtype=np.float32)
    y = rng.integers(0, 10, num_train + TEST_EXAMPLES).astype(np.int32)
    return Dataset("mnist_shaped_random", x[:num_train], y[:num_train], x[num_train:], y[num_train:], 10)


def mlp_workload(name: str, description: str, dataset: Dataset, hidden: tuple[int, ...]) -> Workload:
    dataset = _small_test_split(dataset)
    sizes = (dataset.num_features, *hidden, dataset.num_classes)

    def make_program(rule: str, steps: int) -> TrainProgram:
        config = TrainConfig(rule=rule, hidden=hidden, optimizer="adam", steps=steps, batch_size=BATCH_SIZE,
                             eval_every=steps)
        return make_train_program(config, dataset)

    return Workload(name, description, make_program, None, mlp_training_flops(sizes), BATCH_SIZE, sizes, dataset)


# ---- the recurrent agent, trained by backprop through time ------------------------------------------------------

RECURRENT_INPUTS, RECURRENT_ACTIONS, RECURRENT_HIDDEN = 5, 2, 48
EPISODES_PER_STEP, TRIALS = 8, 25


def random_sequences(num_episodes: int = 1024, seed: int = 0) -> SequenceData:
    rng = np.random.default_rng(seed)
    shape = (num_episodes, TRIALS)
    return SequenceData(
        rng.random((*shape, RECURRENT_INPUTS), dtype=np.float32),
        rng.integers(0, RECURRENT_ACTIONS, shape).astype(np.int32),
        rng.random(shape, dtype=np.float32),
    )


def recurrent_program(rule: str, steps: int) -> TrainProgram:
    """A harness-shaped program (same ``TrainState``, same divergence freeze) for BPTT on the LSTM agent."""
    if rule != "backprop":
        raise ValueError(f"the recurrent agent is benchmarked with backprop (BPTT) only, not {rule!r}")
    agent = lstm_agent(RECURRENT_INPUTS, RECURRENT_ACTIONS, RECURRENT_HIDDEN)
    data = jax.tree.map(jnp.asarray, random_sequences())

    def loss_fn(params, batch: SequenceData):
        def episode(inputs):
            outputs, _ = unroll(agent, params, agent.initial_carry(), inputs)
            return outputs

        outputs = jax.vmap(episode)(batch.inputs)
        policy = softmax_cross_entropy(outputs.logits.reshape(-1, RECURRENT_ACTIONS), batch.actions.reshape(-1))
        return policy + 0.5 * jnp.mean((outputs.value - batch.returns) ** 2)

    def init(key, hparams):
        net_key, run_key = jax.random.split(key)
        params = agent.init(net_key)
        optimizer = make_optimizer("adam", hparams["learning_rate"])
        return TrainState(params, EmptyState(), optimizer.init(params), run_key, jnp.zeros((), jnp.int32),
                          -jnp.ones((), jnp.int32))

    def train_step(optimizer, state: TrainState, _):
        key, batch_key = jax.random.split(state.key)
        index = jax.random.randint(batch_key, (EPISODES_PER_STEP,), 0, data.inputs.shape[0])
        loss, grads = jax.value_and_grad(loss_fn)(state.params, jax.tree.map(lambda a: a[index], data))
        steps_, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, steps_)
        healthy = jnp.isfinite(loss) & tree_all_finite(params) & (state.diverged_at < 0)
        params, opt_state = jax.tree.map(lambda new, old: jnp.where(healthy, new, old),
                                         (params, opt_state), (state.params, state.opt_state))
        return state._replace(params=params, opt_state=opt_state, key=key, step=state.step + 1), loss

    def run(state, hparams, *, num_evals):
        optimizer = make_optimizer("adam", hparams["learning_rate"])

        def period(state, _):
            state, losses = jax.lax.scan(lambda s, x: train_step(optimizer, s, x), state, None, length=steps)
            return state, {"step": state.step, "train_loss": jnp.mean(losses)}

        return jax.lax.scan(period, state, None, length=num_evals)

    return TrainProgram(init, run, 1, agent)


def recurrent_training_flops() -> float:
    """Per trial: the LSTM's gates (inputs + hidden → 4·hidden) and both readouts, 6P less 2P for the inputs."""
    gates = (RECURRENT_INPUTS + RECURRENT_HIDDEN) * 4 * RECURRENT_HIDDEN
    readouts = RECURRENT_HIDDEN * (RECURRENT_ACTIONS + 1)
    return 6.0 * (gates + readouts) - 2.0 * RECURRENT_INPUTS * 4 * RECURRENT_HIDDEN


def workloads() -> dict[str, Workload]:
    return {
        "digits_mlp": mlp_workload("digits_mlp", "MLP 64-128-128-10 on digits", load_dataset("digits"), (128, 128)),
        "mnist_mlp": mlp_workload("mnist_mlp", "MLP 784-256-256-10 on MNIST-shaped random data",
                                  mnist_shaped_data(), (256, 256)),
        "recurrent_agent": Workload(
            "recurrent_agent", "LSTM agent, 48 units, BPTT over 25 trials", recurrent_program, ("backprop",),
            recurrent_training_flops(), EPISODES_PER_STEP * TRIALS,
            (RECURRENT_INPUTS, RECURRENT_HIDDEN, RECURRENT_ACTIONS), random_sequences(),
        ),
    }

