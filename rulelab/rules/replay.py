"""Replay wrappers for continual learning: experience replay and sleep-like replay (Sleep Replay Consolidation).

Both wrap any inner learning rule (``inner="backprop"``, ``"feedback_alignment"``, a rule object, another wrapper)
and are task-aware rules (``rulelab.rules.task_aware``): ``sleep_replay`` sleeps in its ``end_task`` hook.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, Batch, ConformanceProblem, LearningRule, Params, PRNGKey, softmax_cross_entropy
from rulelab.nets.mlp import mlp
from rulelab.registry import register_rule
from rulelab.rules.task_aware import TaskAwareRule, chain_end_task, no_consolidation, resolve_inner


def prototype_problem(**hyperparameters: Any) -> ConformanceProblem:
    """Conformance problem for the replay wrappers: a ReLU MLP classifying noisy copies of 3 random prototypes.

    The wrappers' integer hyperparameters set array shapes and loop lengths, so they are passed here as static
    values (the conformance suite traces every other numeric hyperparameter).
    """
    inputs, classes, batch_size = 10, 3, 32
    prototypes = 2.0 * jax.random.normal(jax.random.key(7), (classes, inputs))
    net = mlp((inputs, 16, classes), "relu")

    def sample_batch(key):
        label_key, noise_key = jax.random.split(key)
        y = jax.random.randint(label_key, (batch_size,), 0, classes)
        return Batch(prototypes[y] + jax.random.normal(noise_key, (batch_size, inputs)), y)

    def loss(params, batch):
        return softmax_cross_entropy(net.apply(params, batch.x)[0], batch.y)

    return ConformanceProblem(net, net.init, sample_batch, loss, hyperparameters, learning_rate=0.05, steps=200)


# ----------------------------------------------------------------------------------------------------------------
# Experience replay


class ReplayState(NamedTuple):
    inner: Any  # the inner rule's state
    buffer_x: Array  # [buffer_size, inputs]
    buffer_y: Array  # [buffer_size] int32
    seen: Array  # [] int32, examples offered to the buffer so far


def reservoir_slots(key: PRNGKey, seen: Array, batch_size: int, capacity: int) -> Array:
    """Reservoir sampling (Vitter 1985) for a batch: the buffer slot of each new example, ``capacity`` = dropped.

    Example number ``n`` of the stream fills slot ``n`` while the buffer has room, then replaces a uniformly chosen
    slot with probability ``capacity / (n + 1)``, so the buffer stays a uniform sample of everything seen.
    """
    position = seen + jnp.arange(batch_size)
    draw = jax.random.randint(key, (batch_size,), 0, position + 1)
    return jnp.where(position < capacity, position, jnp.where(draw < capacity, draw, capacity))


@register_rule("experience_replay", conformance=partial(prototype_problem, buffer_size=64))
def experience_replay(
    net: Any,
    *,
    inner: str | LearningRule | TaskAwareRule = "backprop",
    buffer_size: int = 200,
    replay_batch_size: int | None = None,
) -> TaskAwareRule:
    """Experience replay with a bounded reservoir buffer (Chaudhry et al. 2019, "On tiny episodic memories").

    Every step the batch enters a ``buffer_size`` reservoir of (x, y) pairs, then the inner rule updates on the
    batch concatenated with ``replay_batch_size`` examples drawn from the buffer (default: as many as the batch).
    ``buffer_size`` and ``replay_batch_size`` are structural (static); the reported loss is the inner rule's loss on
    the concatenated batch.
    """
    inner_rule = resolve_inner(net, inner)
    capacity = int(buffer_size)
    if capacity <= 0:
        raise ValueError(f"buffer_size must be positive, got {buffer_size}")

    def init(key, params):
        return ReplayState(inner_rule.init(key, params), jnp.zeros((capacity, net.sizes[0])),
                           jnp.zeros((capacity,), jnp.int32), jnp.zeros((), jnp.int32))

    def update(params, state: ReplayState, batch, *, key):
        insert_key, replay_key, inner_key = jax.random.split(key, 3)
        slots = reservoir_slots(insert_key, state.seen, batch.x.shape[0], capacity)
        buffer_x = state.buffer_x.at[slots].set(batch.x.astype(state.buffer_x.dtype), mode="drop")
        buffer_y = state.buffer_y.at[slots].set(batch.y.astype(jnp.int32), mode="drop")
        seen = state.seen + batch.x.shape[0]
        replayed = replay_batch_size or batch.x.shape[0]
        index = jax.random.randint(replay_key, (replayed,), 0, jnp.minimum(seen, capacity))
        combined = Batch(jnp.concatenate([batch.x, buffer_x[index]]),
                         jnp.concatenate([batch.y.astype(jnp.int32), buffer_y[index]]))
        updates, inner_state, metrics = inner_rule.update(params, state.inner, combined, key=inner_key)
        return updates, ReplayState(inner_state, buffer_x, buffer_y, seen), metrics

    return TaskAwareRule(init, update, chain_end_task(inner_rule, no_consolidation))


# ----------------------------------------------------------------------------------------------------------------
# Sleep Replay Consolidation


class SleepConstants(NamedTuple):
    """The numbers of one sleep phase (each may be a traced array)."""

    input_rate: Any  # spike probability per step of an input whose mean intensity is 1 (SRC: 2·dt·max_rate)
    scale: Any  # global synaptic scale α multiplying every layer's normalisation factor (SRC: alpha_scale)
    threshold: Any  # firing threshold β of every layer, in normalised units
    decay: Any  # membrane potential kept per step
    potentiation: Any  # inc: weight increase per pre-and-post coincidence, times σ(W)
    depression: Any  # dec: weight decrease per post-without-pre event, times σ(W)
    inhibition: Any = 0.0  # γ: fraction of a layer's mean drive subtracted from every unit (lateral inhibition)
    input_plasticity: Any = 1.0  # STDP gain of the first (input-to-hidden) kernel; 0 freezes it during sleep


def layer_peaks(kernels: tuple[Array, ...], activation_max: Array) -> Array:
    """λ_l = max(largest positive weight of W_l, largest activation of layer l on the data), ``[layers]``."""
    return jnp.stack([jnp.maximum(jnp.max(jnp.maximum(w, 0.0)), activation_max[l]) for l, w in enumerate(kernels)])


def layer_scales(peaks: Array) -> tuple[Array, ...]:
    """Data-based normalisation (Diehl et al. 2015, IJCNN), as SRC converts its ReLU network to spikes.

    Layer l's input is multiplied by α_l = λ_{l-1} / λ_l (λ_{-1} = 1 for inputs in [0, 1]), with λ from
    ``layer_peaks``, so every layer's drive is in units of its own largest activation.
    """
    previous = jnp.concatenate([jnp.ones(1), peaks[:-1]])
    return tuple(previous[l] / jnp.maximum(peaks[l], 1e-12) for l in range(peaks.shape[0]))


def stdp_update(kernel: Array, pre: Array, post: Array, potentiation: Any, depression: Any) -> Array:
    """SRC's plasticity for a kernel ``[pre, post]``: ΔW_ij = σ(W_ij) · post_j · (inc · pre_i − dec · (1 − pre_i)).

    A synapse is potentiated when its pre- and postsynaptic units spike in the same step, depressed when the
    postsynaptic unit spikes without it, and left alone when the postsynaptic unit is silent.
    """
    return jax.nn.sigmoid(kernel) * post[None, :] * (potentiation * pre - depression * (1.0 - pre))[:, None]


class SleepCarry(NamedTuple):
    kernels: tuple[Array, ...]  # W_l, [in_l, out_l]
    voltages: tuple[Array, ...]  # v_l, [out_l]
    spike_counts: Array  # [layers + 1] spikes summed over units and steps, input layer first


def sleep_step(carry: SleepCarry, key: PRNGKey, *, input_probability: Array, scales, currents,
               constants: SleepConstants):
    """One time step of the spiking copy of the network, with STDP applied layer by layer."""
    pre = (jax.random.uniform(key, input_probability.shape) < input_probability).astype(input_probability.dtype)
    kernels, voltages, counts = [], [], [jnp.sum(pre)]
    for layer, (kernel, voltage, scale, current) in enumerate(zip(carry.kernels, carry.voltages, scales, currents)):
        voltage = constants.decay * voltage + constants.scale * (scale * (pre @ kernel) + current)
        # lateral inhibition (γ = 0: none): the layer's mean drive, via the kernel's row means (the drive is linear)
        mean_drive = scale * (pre @ jnp.mean(kernel, axis=1)) + jnp.mean(current)
        voltage = voltage - constants.scale * constants.inhibition * mean_drive
        post = (voltage > constants.threshold).astype(voltage.dtype)
        voltages.append(voltage * (1.0 - post))  # reset to 0 after a spike
        change = stdp_update(kernel, pre, post, constants.potentiation, constants.depression)
        kernels.append(kernel + (constants.input_plasticity * change if layer == 0 else change))
        counts.append(jnp.sum(post))
        pre = post
    return SleepCarry(tuple(kernels), tuple(voltages), carry.spike_counts + jnp.stack(counts)), None


def sleep_phase(
    kernels: tuple[Array, ...],
    input_probability: Array,
    scales: tuple[Array, ...],
    constants: SleepConstants,
    key: PRNGKey,
    *,
    base_steps: int,
    growth_steps: int = 0,
    growth_repeats: Array | int = 0,
    currents: tuple[Array, ...] | None = None,
) -> tuple[tuple[Array, ...], Array]:
    """Run ``base_steps + growth_repeats · growth_steps`` sleep steps (``lax.scan``s); returns the new kernels and
    each layer's mean spike probability per unit and step ``[layers + 1]`` (input layer first).

    ``currents[l]`` ``[out_l]`` is a constant input added to layer l every step (before the global scale);
    ``growth_repeats`` may be traced (the number of tasks slept so far), so sleep grows with the task count without
    recompiling.
    """
    currents = tuple(jnp.zeros(k.shape[1]) for k in kernels) if currents is None else tuple(currents)
    step = partial(sleep_step, input_probability=input_probability, scales=scales, currents=currents,
                   constants=constants)
    carry = SleepCarry(tuple(kernels), tuple(jnp.zeros(k.shape[1]) for k in kernels),
                       jnp.zeros(len(kernels) + 1))
    base_key, growth_key = jax.random.split(key)
    carry, _ = jax.lax.scan(step, carry, jax.random.split(base_key, base_steps))
    if growth_steps:
        def grow(i, carry):
            return jax.lax.scan(step, carry, jax.random.split(jax.random.fold_in(growth_key, i), growth_steps))[0]

        carry = jax.lax.fori_loop(0, growth_repeats, grow, carry)
    total_steps = base_steps + growth_steps * growth_repeats
    widths = jnp.asarray([input_probability.shape[0]] + [k.shape[1] for k in kernels], jnp.float32)
    return carry.kernels, carry.spike_counts / (widths * total_steps)


def sleep_input_probability(input_mean: Array, rate: Any, contrast: Any = 0.0) -> Array:
    """Per-step input spike probability min(1, r · x̃ · max x̄ / max x̃), x̃ = relu(x̄ − κ · mean(x̄)) ``[inputs]``.

    κ = ``contrast`` = 0 is SRC's Poisson input from the mean input x̄; κ > 0 removes a fraction of the flat part of
    x̄ and rescales so the most active input keeps its rate (contrast enhancement for a near-flat mean input).
    """
    enhanced = jnp.maximum(input_mean - contrast * jnp.mean(input_mean), 0.0)
    enhanced = enhanced * (jnp.max(input_mean) / jnp.maximum(jnp.max(enhanced), 1e-12))
    return jnp.clip(rate * jnp.where(contrast == 0, input_mean, enhanced), 0.0, 1.0)  # κ = 0: exactly r · x̄


class SleepState(NamedTuple):
    inner: Any  # the inner rule's state
    input_mean: Array  # [inputs] mean input over the samples of the finished tasks (equal weight per task)
    activation_max: Array  # [layers] largest rectified activation of each layer seen at the task boundaries
    tasks_slept: Array  # [] int32


@register_rule("sleep_replay", conformance=partial(prototype_problem, sleep_steps=20, sleep_steps_growth=10))
def sleep_replay(
    net: Any,
    *,
    inner: str | LearningRule | TaskAwareRule = "backprop",
    sleep_steps: int = 400,
    sleep_steps_growth: int = 200,
    sleep_input_rate: float = 0.48,
    sleep_scale: float = 3.0,
    sleep_threshold: float = 1.0,
    sleep_decay: float = 0.999,
    sleep_potentiation: float = 0.003,
    sleep_depression: float = 0.002,
    sleep_bias_current: float = 0.0,
    sleep_inhibition: float = 0.0,
    sleep_input_contrast: float = 0.0,
    sleep_input_plasticity: float = 1.0,
) -> TaskAwareRule:
    """Sleep Replay Consolidation (Tadros, Krishnan, Ramyaa & Bazhenov 2022, Nat. Commun. 13:7742) around a rule.

    Wake: the inner rule learns each task. Sleep, after task k (``end_task``): the ReLU network runs as a network
    of integrate-and-fire units for ``sleep_steps + k · sleep_steps_growth`` steps,

        s_0(t) ~ Bernoulli(min(1, r · x̄)),   v_l ← δ v_l + α (α_l s_l W_l + c b_l / λ_l),   s_{l+1} = [v_l > β]
        v_l ← 0 where s_{l+1} = 1,            W_l ← W_l + σ(W_l) ⊙ s_{l+1} (inc · s_l − dec · (1 − s_l))

    with x̄ the mean input of the data seen so far, α_l, λ_l the data-based normalisation (``layer_scales``) over
    the largest activations seen so far, r = ``sleep_input_rate``, α = ``sleep_scale``, β = ``sleep_threshold``,
    δ = ``sleep_decay``, inc/dec = ``sleep_potentiation`` / ``sleep_depression``, and c = ``sleep_bias_current``
    (0, the default, is SRC's bias-free spiking network; 1 feeds the ANN's biases in as constant currents, as in
    ANN-to-SNN conversion, Rueckauer et al. 2017). Biases are not plastic. The kernels after sleep are the network
    for the next task. Expects ``rulelab.mlp`` parameters; ``sleep_steps*`` are structural (static).

    Three options, off by default (the defaults reproduce the version above per seed), for inputs whose mean is
    nearly flat (MNIST-1D): ``sleep_inhibition`` γ subtracts γ · α · mean_units(α_l s_l W_l + c b_l / λ_l) from every
    unit's potential (lateral inhibition, the ``Winh`` term of public reimplementations of this sleep phase);
    ``sleep_input_contrast`` κ replaces x̄ by relu(x̄ − κ · mean(x̄)), rescaled to the same peak
    (``sleep_input_probability``); ``sleep_input_plasticity`` multiplies the first kernel's STDP (0 freezes it).
    docs/continual.md lists which constants follow the paper and which were tuned.
    """
    inner_rule = resolve_inner(net, inner)
    base_steps, growth_steps = int(sleep_steps), int(sleep_steps_growth)
    constants = SleepConstants(sleep_input_rate, sleep_scale, sleep_threshold, sleep_decay,
                               sleep_potentiation, sleep_depression, sleep_inhibition,
                               sleep_input_plasticity)

    def init(key, params):
        return SleepState(inner_rule.init(key, params), jnp.zeros(net.sizes[0]), jnp.zeros(net.num_layers),
                          jnp.zeros((), jnp.int32))

    def update(params, state: SleepState, batch, *, key):
        updates, inner_state, metrics = inner_rule.update(params, state.inner, batch, key=key)
        return updates, state._replace(inner=inner_state), metrics

    def sleep(params: Params, state: SleepState, batch, *, key):
        slept = state.tasks_slept
        input_mean = state.input_mean + (jnp.mean(batch.x, axis=0) - state.input_mean) / (slept + 1)
        _, activity = net.apply(params, batch.x)
        peaks = jnp.stack([jnp.max(jnp.maximum(a, 0.0)) for a in activity.preactivations])
        activation_max = jnp.maximum(state.activation_max, peaks)
        kernels = tuple(layer["kernel"] for layer in params)
        peaks = layer_peaks(kernels, activation_max)
        currents = tuple(sleep_bias_current * layer["bias"] / peaks[l] for l, layer in enumerate(params))
        new_kernels, spike_rates = sleep_phase(
            kernels, sleep_input_probability(input_mean, sleep_input_rate, sleep_input_contrast),
            layer_scales(peaks), constants, key,
            base_steps=base_steps, growth_steps=growth_steps, growth_repeats=slept, currents=currents,
        )
        params = tuple({**layer, "kernel": kernel} for layer, kernel in zip(params, new_kernels))
        new_state = SleepState(state.inner, input_mean, activation_max, slept + 1)
        return params, new_state, {"sleep_spike_rate": spike_rates}

    return TaskAwareRule(init, update, chain_end_task(inner_rule, sleep))
