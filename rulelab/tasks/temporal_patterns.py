"""Temporal patterns for a reservoir to generate: sine, triangle and square waves, and the Lorenz attractor.

Each task is a static ``TemporalTask`` whose numeric parameters are array leaves (gymnax style), so a sweep over
periods is a ``vmap``. ``task.sequence(key, params, num_steps, dt)`` returns the target ``[num_steps, outputs]``
sampled every ``dt`` seconds from t = 0.

- sine:     A sin(2π t / T)
- triangle: A (2/π) arcsin(sin(2π t / T))            (a triangle wave with the sine's phase and extrema)
- square:   A sign(sin(2π t / T))                    (jumps a rate network can only approximate)
- lorenz:   ẋ = σ(y − x), ẏ = x(ρ − z) − y, ż = xy − βz (Lorenz 1963), RK4; three outputs
            (x, y, z − (ρ − 1)) / 20, with one Lorenz time unit lasting ``period`` seconds. The key picks the
            initial condition, which is run onto the attractor before sampling starts.

For the chaotic Lorenz target pointwise error is meaningless after a few Lyapunov times; ``tent_map_distance``
compares attractor statistics instead: the map from one maximum of z to the next (Lorenz's tent map).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, PRNGKey


class WaveParams(NamedTuple):
    period: Array  # T, seconds per cycle
    amplitude: Array  # A


class LorenzParams(NamedTuple):
    period: Array  # seconds per Lorenz time unit
    sigma: Array
    rho: Array
    beta: Array


class TemporalTask(NamedTuple):
    name: str
    num_outputs: int
    default_params: Callable[[], Any]
    sequence: Callable[[PRNGKey, Any, int, float], Array]  # (key, params, num_steps, dt) -> [num_steps, outputs]


def wave_phase(params: WaveParams, num_steps: int, dt: float) -> Array:
    """2π t / T at t = 0, dt, ..., (num_steps − 1) dt: [num_steps]."""
    return 2.0 * jnp.pi * jnp.arange(num_steps) * dt / params.period


def _wave_task(name: str, shape: Callable[[Array], Array]) -> TemporalTask:
    def sequence(key: PRNGKey, params: WaveParams, num_steps: int, dt: float) -> Array:
        del key
        return (params.amplitude * shape(wave_phase(params, num_steps, dt)))[:, None]

    return TemporalTask(name, 1, lambda: WaveParams(jnp.asarray(4.0), jnp.asarray(1.0)), sequence)


def triangle_shape(phase: Array) -> Array:
    return (2.0 / jnp.pi) * jnp.arcsin(jnp.sin(phase))


def square_shape(phase: Array) -> Array:
    return jnp.sign(jnp.sin(phase))


LORENZ_SCALE = 1.0 / 20.0
LORENZ_BURN_IN_STEPS, LORENZ_BURN_IN_DT = 2000, 0.01  # 20 Lorenz time units onto the attractor
LORENZ_SUBSTEPS = 4  # RK4 steps per output sample


def lorenz_derivative(state: Array, params: LorenzParams) -> Array:
    x, y, z = state
    return jnp.stack([params.sigma * (y - x), x * (params.rho - z) - y, x * y - params.beta * z])


def rk4_step(state: Array, params: LorenzParams, h: Array) -> Array:
    k1 = lorenz_derivative(state, params)
    k2 = lorenz_derivative(state + 0.5 * h * k1, params)
    k3 = lorenz_derivative(state + 0.5 * h * k2, params)
    k4 = lorenz_derivative(state + h * k3, params)
    return state + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def lorenz_trajectory(key: PRNGKey, params: LorenzParams, num_steps: int, h: Array) -> Array:
    """Raw Lorenz states [num_steps, 3] every ``h`` time units, after a burn-in from a keyed initial condition."""
    state = jnp.array([1.0, 1.0, 20.0]) + jax.random.normal(key, (3,))
    state = jax.lax.fori_loop(0, LORENZ_BURN_IN_STEPS, lambda _, s: rk4_step(s, params, LORENZ_BURN_IN_DT), state)

    def sample(state, _):
        state = jax.lax.fori_loop(0, LORENZ_SUBSTEPS, lambda _, s: rk4_step(s, params, h / LORENZ_SUBSTEPS), state)
        return state, state

    _, states = jax.lax.scan(sample, state, None, length=num_steps)
    return states


def lorenz_sequence(key: PRNGKey, params: LorenzParams, num_steps: int, dt: float) -> Array:
    states = lorenz_trajectory(key, params, num_steps, dt / params.period)
    centre = jnp.stack([0.0, 0.0, params.rho - 1.0])
    return (states - centre) * LORENZ_SCALE


def _default_lorenz_params() -> LorenzParams:
    return LorenzParams(jnp.asarray(5.0), jnp.asarray(10.0), jnp.asarray(28.0), jnp.asarray(8.0 / 3.0))


TASKS: dict[str, TemporalTask] = {
    "sine": _wave_task("sine", jnp.sin),
    "triangle": _wave_task("triangle", triangle_shape),
    "square": _wave_task("square", square_shape),
    "lorenz": TemporalTask("lorenz", 3, _default_lorenz_params, lorenz_sequence),
}
LORENZ_Z = 2  # output index of z


def make_task(name: str) -> TemporalTask:
    if name not in TASKS:
        raise ValueError(f"unknown temporal pattern {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def task_params(task: TemporalTask, **overrides: Any) -> Any:
    """The task's default parameters with ``overrides`` (traced values allowed) replacing named fields."""
    defaults = task.default_params()
    unknown = sorted(set(overrides) - set(defaults._fields))
    if unknown:
        raise ValueError(f"{task.name} has no parameter {', '.join(unknown)}; valid: {', '.join(defaults._fields)}")
    return defaults._replace(**{k: jnp.asarray(v, jnp.float32) for k, v in overrides.items()})


# --- attractor statistics ------------------------------------------------------------------------------------


def normalised_error(outputs: Array, targets: Array) -> Array:
    """RMS error divided by the target's standard deviation, averaged over outputs ([T, outputs] each)."""
    rms = jnp.sqrt(jnp.mean((outputs - targets) ** 2, axis=0))
    return jnp.mean(rms / jnp.std(targets, axis=0))


def spectral_error(outputs: Array, targets: Array) -> Array:
    """Phase-blind error: distance between Hann-windowed amplitude spectra over the target's, averaged over outputs.

    Near 0 when the output has the target's waveform and frequency but a drifted phase, which ``normalised_error``
    counts as up to √2 (a wave against its shifted copy).
    """
    window = jnp.hanning(targets.shape[0])[:, None]
    generated = jnp.abs(jnp.fft.rfft(window * outputs, axis=0))
    target = jnp.abs(jnp.fft.rfft(window * targets, axis=0))
    return jnp.mean(jnp.linalg.norm(generated - target, axis=0) / jnp.linalg.norm(target, axis=0))


def successive_maxima(signal: Array, threshold: Array, max_count: int) -> tuple[Array, Array]:
    """Strict local maxima of ``signal`` [T] above ``threshold``, in order: (values [max_count], valid [max_count])."""
    middle = signal[1:-1]
    is_peak = (middle > signal[:-2]) & (middle >= signal[2:]) & (middle > threshold)
    (index,) = jnp.nonzero(is_peak, size=max_count, fill_value=-1)
    valid = index >= 0
    return jnp.where(valid, middle[jnp.maximum(index, 0)], 0.0), valid


def tent_map_pairs(signal: Array, threshold: Array, max_count: int) -> tuple[Array, Array]:
    """Pairs (m_n, m_{n+1}) of successive maxima: ([max_count − 1, 2], valid [max_count − 1])."""
    maxima, valid = successive_maxima(signal, threshold, max_count)
    return jnp.stack([maxima[:-1], maxima[1:]], axis=-1), valid[:-1] & valid[1:]


def masked_std(values: Array, valid: Array) -> Array:
    """Standard deviation of the entries of ``values`` where ``valid``."""
    count = jnp.maximum(jnp.sum(valid), 1)
    mean = jnp.sum(jnp.where(valid, values, 0.0)) / count
    return jnp.sqrt(jnp.sum(jnp.where(valid, (values - mean) ** 2, 0.0)) / count)


def _mean_nearest_distance(points: Array, valid: Array, reference: Array, reference_valid: Array) -> Array:
    distance = jnp.linalg.norm(points[:, None, :] - reference[None, :, :], axis=-1)
    nearest = jnp.min(jnp.where(reference_valid[None, :], distance, jnp.inf), axis=1)
    return jnp.sum(jnp.where(valid, nearest, 0.0)) / jnp.maximum(jnp.sum(valid), 1)


def tent_map_distance(generated_z: Array, target_z: Array, *, max_count: int = 256) -> tuple[Array, Array]:
    """Symmetric mean nearest-neighbour distance between the tent maps of two z signals, in units of std(maxima).

    Maxima are counted above the target's mean (ignoring small ripples). The distance is small only when the
    generated maxima both lie on the target's map and cover it (a periodic orbit sitting on one point of the map
    fails the second half). Returns ``(distance, number of generated pairs)``; no pairs gives ``inf``.
    """
    threshold = jnp.mean(target_z)
    target_pairs, target_valid = tent_map_pairs(target_z, threshold, max_count)
    pairs, valid = tent_map_pairs(generated_z, threshold, max_count)
    scale = masked_std(target_pairs[:, 0], target_valid)
    forward = _mean_nearest_distance(pairs, valid, target_pairs, target_valid)
    backward = _mean_nearest_distance(target_pairs, target_valid, pairs, valid)
    count = jnp.sum(valid)
    distance = jnp.where(count > 0, 0.5 * (forward + backward) / scale, jnp.inf)
    return distance, count
