"""A rate reservoir: a random recurrent tanh network whose linear readout is fed back into it.

Euler-integrated rate dynamics (Sussillo & Abbott 2009, Neuron 63:544), row-vector convention:

    r_t = tanh(x_t),   z_t = r_t w,   x_{t+1} = x_t + (dt/τ) (−x_t + r_t J + z_t W_f)

``J`` [N, N] (from, to) is sparse: each entry is non-zero with probability ``p`` and then drawn from
``N(0, g² / (p N))``, so every unit receives input of variance g² and, for a uniform network, the bulk of the
spectrum of ``J`` fills a disc of radius ``g`` (chaotic for g > 1, Sompolinsky, Crisanti & Sommers 1988). ``W_f``
[outputs, N] is uniform in [−1, 1] times ``feedback_scale`` (0 cuts the loop: a no-feedback readout); the readout
``w`` [N, outputs] starts at zero.

Modularity (the microfluidic modules of cultured-neuron reservoirs): units are split into ``num_modules`` equal,
contiguous modules and a fraction ``between_module_fraction`` (f) of the expected ``p N²`` connections joins
different modules: ``p_within = (1 − f) p M``, ``p_between = f p / (1 − 1/M)``. ``f = 1 − 1/M`` is the uniform
network; ``f → 0`` gives isolated modules. Row variance stays ``g²`` for every ``f`` (while ``p_within ≤ 1``, which
bounds ``f ≥ 1 − 1/(p M)``; below that ``p_within`` is clipped at 1 and fewer connections are drawn).

``gain``, ``between_module_fraction`` and ``feedback_scale`` are traced arguments of ``init``, so a sweep over them
is a ``vmap``; sizes and the module count are static.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, PRNGKey


class ReservoirParams(NamedTuple):
    recurrent: Array  # J: [N, N], J[i, j] is the weight from unit i to unit j
    feedback: Array  # W_f: [outputs, N]
    readout: Array  # w: [N, outputs]


class Reservoir(NamedTuple):
    """A static reservoir description with pure functions (see the module docstring for the equations)."""

    size: int  # N
    num_outputs: int
    num_modules: int
    connection_probability: float  # p
    time_step: float  # dt / τ
    init: Callable[..., ReservoirParams]  # init(key, *, gain, between_module_fraction, feedback_scale)
    initial_state: Callable[[PRNGKey], Array]  # x_0: [N]
    step: Callable[..., tuple[Array, Array, Array]]  # step(params, x, fed_back=None) -> (x_{t+1}, r_t, z_t)
    run: Callable[..., tuple[Array, Array, Array]]  # run(params, x, num_steps) -> (x_T, r [T, N], z [T, outputs])
    run_forced: Callable[..., tuple[Array, Array, Array]]  # run_forced(params, x, fed_back [T, outputs]) -> same


def module_of_unit(size: int, num_modules: int) -> Array:
    """Module index of every unit: ``num_modules`` equal contiguous blocks, [size] int32."""
    return (jnp.arange(size) * num_modules // size).astype(jnp.int32)


def connection_probabilities(
    size: int, num_modules: int, connection_probability: float, between_module_fraction: Array
) -> Array:
    """[N, N] probability that each connection exists, with ``between_module_fraction`` of them between modules."""
    if num_modules == 1:
        return jnp.full((size, size), connection_probability)
    module = module_of_unit(size, num_modules)
    same_module = module[:, None] == module[None, :]
    within = jnp.clip((1.0 - between_module_fraction) * connection_probability * num_modules, 0.0, 1.0)
    between = jnp.clip(between_module_fraction * connection_probability / (1.0 - 1.0 / num_modules), 0.0, 1.0)
    return jnp.where(same_module, within, between)


def reservoir(
    size: int,
    num_outputs: int = 1,
    *,
    num_modules: int = 1,
    connection_probability: float = 0.1,
    time_step: float = 0.1,
) -> Reservoir:
    """A reservoir of ``size`` tanh units with ``num_outputs`` fed-back linear readouts."""
    if size <= 0 or num_outputs <= 0:
        raise ValueError(f"reservoir size and num_outputs must be positive, got {size} and {num_outputs}")
    if not 1 <= num_modules <= size:
        raise ValueError(f"num_modules must be between 1 and size ({size}), got {num_modules}")
    if not 0.0 < connection_probability <= 1.0:
        raise ValueError(f"connection_probability must be in (0, 1], got {connection_probability}")
    if not 0.0 < time_step <= 1.0:
        raise ValueError(f"time_step (dt/τ) must be in (0, 1], got {time_step}")

    def init(
        key: PRNGKey, *, gain: Array = 1.5, between_module_fraction: Array | None = None, feedback_scale: Array = 1.0
    ) -> ReservoirParams:
        if between_module_fraction is None:  # the uniform network
            between_module_fraction = 1.0 - 1.0 / num_modules
        mask_key, weight_key, feedback_key = jax.random.split(key, 3)
        probability = connection_probabilities(size, num_modules, connection_probability, between_module_fraction)
        mask = jax.random.uniform(mask_key, (size, size)) < probability
        scale = gain / jnp.sqrt(connection_probability * size)
        recurrent = jnp.where(mask, scale * jax.random.normal(weight_key, (size, size)), 0.0)
        feedback = feedback_scale * jax.random.uniform(feedback_key, (num_outputs, size), minval=-1.0, maxval=1.0)
        return ReservoirParams(recurrent, feedback, jnp.zeros((size, num_outputs)))

    def initial_state(key: PRNGKey) -> Array:
        return 0.5 * jax.random.normal(key, (size,))

    def step(params: ReservoirParams, x: Array, fed_back: Array | None = None) -> tuple[Array, Array, Array]:
        """One Euler step; ``fed_back`` [outputs] replaces the output in the loop (teacher forcing) when given."""
        rates = jnp.tanh(x)
        output = rates @ params.readout
        loop = output if fed_back is None else fed_back
        drive = rates @ params.recurrent + loop @ params.feedback
        return x + time_step * (drive - x), rates, output

    def scan_steps(params: ReservoirParams, x: Array, fed_back: Array | None, num_steps: int):
        def body(x, signal):
            x, rates, output = step(params, x, signal)
            return x, (rates, output)

        x, (rates, outputs) = jax.lax.scan(body, x, fed_back, length=num_steps)
        return x, rates, outputs

    def run(params: ReservoirParams, x: Array, num_steps: int) -> tuple[Array, Array, Array]:
        """Closed loop: the output itself is fed back."""
        return scan_steps(params, x, None, num_steps)

    def run_forced(params: ReservoirParams, x: Array, fed_back: Array) -> tuple[Array, Array, Array]:
        """Open loop: ``fed_back`` [T, outputs] (e.g. the target) is fed back instead of the output."""
        return scan_steps(params, x, fed_back, fed_back.shape[0])

    return Reservoir(size, num_outputs, num_modules, connection_probability, time_step, init, initial_state, step,
                     run, run_forced)
