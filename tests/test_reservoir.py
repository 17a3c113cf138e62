"""Reservoir network, temporal-pattern tasks, attractor statistics, the vmapped harness and the CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from rulelab.cli import main
from rulelab.harness.reservoir import ReservoirConfig, make_reservoir_train, product_grid, run_reservoir_grid
from rulelab.nets.reservoir import module_of_unit, reservoir
from rulelab.tasks.temporal_patterns import (
    make_task,
    normalised_error,
    spectral_error,
    successive_maxima,
    task_params,
    tent_map_distance,
)


def test_spectrum_fills_a_disc_of_radius_gain_for_uniform_and_modular_networks():
    # Every unit receives input of variance g², so the eigenvalues of J fill a disc of radius g (circular law):
    # mean |λ|² = g² / 2 and the largest |λ| ≈ g (finite-size outliers of a few per cent to ~15 % at N = 300).
    net = reservoir(300, num_modules=4)

    @jax.jit
    def spectrum(gain, fraction):
        recurrent = net.init(jax.random.key(0), gain=gain, between_module_fraction=fraction).recurrent
        magnitude = jnp.abs(jnp.linalg.eigvals(recurrent))
        return jnp.max(magnitude), jnp.mean(magnitude**2)

    for gain, fraction in [(1.5, 0.75), (1.5, 0.05), (0.8, 0.3)]:
        radius, mean_square = spectrum(gain, fraction)
        assert abs(2.0 * float(mean_square) / gain**2 - 1.0) < 0.08
        assert abs(float(radius) / gain - 1.0) < 0.2


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.75])
def test_between_module_fraction_and_density(fraction):
    size, modules, p = 400, 4, 0.1
    params = reservoir(size, num_modules=modules, connection_probability=p).init(
        jax.random.key(1), between_module_fraction=fraction)
    connected = np.asarray(params.recurrent) != 0
    module = np.asarray(module_of_unit(size, modules))
    between = module[:, None] != module[None, :]
    assert abs(connected.mean() - p) < 0.01
    assert abs(connected[between].sum() / connected.sum() - fraction) < 0.02


def test_step_follows_the_rate_equation_and_forcing_with_the_output_is_the_closed_loop():
    net = reservoir(30, 2, time_step=0.1)
    params = net.init(jax.random.key(2))._replace(readout=0.2 * jax.random.normal(jax.random.key(3), (30, 2)))
    x = net.initial_state(jax.random.key(4))

    @jax.jit
    def step_and_runs(params, x):
        closed = net.run(params, x, 20)
        return net.step(params, x), closed, net.run_forced(params, x, closed[2])

    (new_x, _, output), closed, forced = step_and_runs(params, x)
    x, recurrent, feedback, readout = (np.asarray(a, np.float64) for a in (x, *params))
    z = np.tanh(x) @ readout
    np.testing.assert_allclose(new_x, x + 0.1 * (-x + np.tanh(x) @ recurrent + z @ feedback), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output, z, rtol=1e-5, atol=1e-6)
    for a, b in zip(closed, forced):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def wave(name, num_steps, dt=0.25, **params):
    task = make_task(name)
    return np.asarray(task.sequence(None, task_params(task, **params), num_steps, dt))[:, 0]


def test_wave_shapes():
    # period 4 s sampled every 0.25 s: 16 samples per cycle, quarter periods at samples 4, 8, 12
    sine, triangle = wave("sine", 17, period=4.0, amplitude=2.0), wave("triangle", 17, period=4.0, amplitude=2.0)
    for shape in (sine, triangle):
        np.testing.assert_allclose(shape[[0, 4, 8, 12, 16]], [0, 2, 0, -2, 0], atol=1e-5)
    np.testing.assert_allclose(np.diff(triangle[:5]), 0.5, atol=1e-5)  # linear rise: 4 A / period per second
    np.testing.assert_allclose(np.diff(triangle[4:13]), -0.5, atol=1e-5)
    square = wave("square", 16, period=4.0, amplitude=2.0)
    np.testing.assert_allclose(square[[1, 3, 5, 7]], 2.0)
    np.testing.assert_allclose(square[[9, 11, 13, 15]], -2.0)
    np.testing.assert_allclose(wave("sine", 9, period=8.0), np.sin(2 * np.pi * np.arange(9) * 0.25 / 8.0), atol=1e-6)


def test_spectral_error_ignores_phase_but_not_frequency():
    t = np.arange(2000) * 0.01
    target = np.sin(2 * np.pi * t / 4.0)[:, None]
    shifted = np.sin(2 * np.pi * t / 4.0 + 2.0)[:, None]
    faster = np.sin(2 * np.pi * t / 3.0)[:, None]
    assert float(normalised_error(jnp.asarray(shifted), jnp.asarray(target))) > 1.0
    assert float(spectral_error(jnp.asarray(shifted), jnp.asarray(target))) < 0.05
    assert float(spectral_error(jnp.asarray(faster), jnp.asarray(target))) > 1.0
    assert float(spectral_error(jnp.asarray(target), jnp.asarray(target))) == 0.0


def test_successive_maxima():
    signal = jnp.array([0.0, 2.0, 1.0, 3.0, 0.5, 0.6, 0.4, 5.0, 1.0])
    values, valid = successive_maxima(signal, 1.0, 5)
    np.testing.assert_array_equal(valid, [True, True, True, False, False])
    np.testing.assert_allclose(values[:3], [2.0, 3.0, 5.0])


@pytest.fixture(scope="module")
def lorenz_z():
    task = make_task("lorenz")
    params = task_params(task, period=1.0)
    sequence = jax.jit(lambda key: task.sequence(key, params, 4000, 0.01))
    return [np.asarray(sequence(jax.random.key(k)))[:, 2] for k in range(3)]


def test_lorenz_tent_map_is_a_shared_attractor_statistic(lorenz_z):
    # Lorenz (1963): successive z-maxima lie on one curve, whatever the initial condition. Independent
    # trajectories (pointwise uncorrelated) have close tent maps; a periodic signal with the same range does not.
    reference, other, third = lorenz_z
    assert np.corrcoef(reference, other)[0, 1] < 0.5
    same_attractor, pairs = tent_map_distance(jnp.asarray(other), jnp.asarray(reference))
    assert int(pairs) > 20 and float(same_attractor) < 0.25
    periodic = reference.mean() + (reference.max() - reference.mean()) * np.sin(np.arange(4000) * 0.08)
    assert float(tent_map_distance(jnp.asarray(periodic), jnp.asarray(reference))[0]) > 2 * float(same_attractor)
    silent, count = tent_map_distance(jnp.zeros(4000) + reference.mean() - 1.0, jnp.asarray(third))
    assert int(count) == 0 and np.isinf(float(silent))


def test_grid_over_gains_and_modularity_matches_single_runs():
    config = ReservoirConfig(target="sine", size=40, num_modules=4, warmup_time=0.2, train_time=2.0, test_time=1.0)
    grid = product_grid(gain=[1.2, 1.6], between_module_fraction=[0.05, 0.75])
    result = run_reservoir_grid(config, grid, num_seeds=2)
    assert result.metrics["free_running_error"].shape == (4, 2)
    assert result.traces["test_output"].shape == (4, 2, config.test_steps, 1)
    train = jax.jit(make_reservoir_train(config))
    single_hparams = {k: jnp.asarray(v[3]) for k, v in result.hparams.items()}
    metrics, _ = train(jax.random.fold_in(jax.random.key(0), 1), single_hparams)
    np.testing.assert_allclose(metrics["free_running_error"], result.metrics["free_running_error"][3, 1], rtol=1e-3)


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["reservoir", "--target", "triangle", "--period", "2", "--seeds", "2", "--size", "60",
                 "--train-periods", "4", "--test-periods", "1", "--between", "0.1,0.75", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["target"] == "triangle" and summary["seeds"] == 2
    assert len(summary["settings"]) == 4  # {feedback, no feedback} × two between-module fractions
    for setting in summary["settings"]:
        assert len(setting["free_running_error"]) == 2 and setting["period"] == 2.0
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 8 and {"free_running_error", "train_error", "seed", "gain"} <= set(frame.columns)
    assert (out / "generation.png").stat().st_size > 0
    traces = pd.read_parquet(out / "traces.parquet")
    assert traces["learning"].any() and not traces["learning"].all()
    assert "free_running_error" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--target", "circle"], "valid: sine, triangle, square, lorenz"),
    (["--rule", "backprop"], "valid: force, lms_readout, reservoir_bptt"),
    (["--between", "1.5"], "[0, 1]"),
    (["--period", "0"], "positive number"),
    (["--seeds", "-2"], "positive integer"),
])
def test_cli_bad_input_is_one_line(argv, message, capsys, tmp_path):
    try:
        code = main(["reservoir", *argv, "--out", str(tmp_path)])
    except SystemExit as exit_:
        code = exit_.code
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.slow
def test_full_size_force_sine_and_lorenz():
    """Full-size reproduction (N = 500, 4 seeds): sine generation and the Lorenz tent map."""
    sine = ReservoirConfig(target="sine", size=500, train_time=40.0, test_time=20.0)
    result = run_reservoir_grid(sine, product_grid(feedback_scale=[1.0, 0.0], period=[4.0]), num_seeds=4)
    assert np.all(result.metrics["free_running_error"][0] < 0.05)
    assert np.all(result.metrics["free_running_error"][1] > 0.9)
    lorenz = ReservoirConfig(target="lorenz", size=500, train_time=200.0, test_time=100.0)
    result = run_reservoir_grid(lorenz, product_grid(feedback_scale=[1.0, 0.0], period=[5.0]), num_seeds=4)
    distance = result.metrics["tent_map_distance"]
    assert np.median(distance[0]) < 5 * np.median(result.metrics["tent_map_floor"][0])
    assert np.median(distance[0]) < 0.25 * np.median(distance[1])
