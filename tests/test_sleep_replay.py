"""Sleep Replay Consolidation: STDP, the spiking sleep phase, data-based normalisation and the wrapper rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.core import Batch
from rulelab.rules.replay import (SleepConstants, layer_peaks, layer_scales, sleep_input_probability, sleep_phase,
                                  stdp_update)

CONSTANTS = SleepConstants(input_rate=0.5, scale=2.0, threshold=1.0, decay=0.999, potentiation=0.01,
                           depression=0.002)


def test_stdp_potentiates_only_coincident_pairs_and_depresses_post_without_pre():
    kernel = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    pre = jnp.array([1.0, 0.0, 1.0, 0.0])
    post = jnp.array([1.0, 1.0, 0.0])
    delta = np.asarray(stdp_update(kernel, pre, post, 0.01, 0.002))
    sigma = np.asarray(jax.nn.sigmoid(kernel))
    for i in range(4):
        for j in range(3):
            if post[j] == 0:
                assert delta[i, j] == 0.0  # silent postsynaptic unit: no change at all
            elif pre[i] == 1:
                assert delta[i, j] == pytest.approx(0.01 * sigma[i, j])  # co-firing: potentiation
            else:
                assert delta[i, j] == pytest.approx(-0.002 * sigma[i, j])  # post without pre: depression


def test_no_input_means_no_spikes_and_no_weight_change():
    kernels = tuple(jnp.asarray(np.random.default_rng(1).normal(size=s), jnp.float32) for s in [(6, 5), (5, 3)])
    scales = (jnp.array(1.0), jnp.array(1.0))
    new_kernels, rates = sleep_phase(kernels, jnp.zeros(6), scales, CONSTANTS, jax.random.key(0), base_steps=50)
    np.testing.assert_array_equal(np.asarray(rates), 0.0)
    for new, old in zip(new_kernels, kernels):
        np.testing.assert_array_equal(new, old)


def test_sleep_length_grows_with_the_tasks_slept():
    """All inputs spike every step and every unit fires, so each step adds inc·σ(W): count the steps taken."""
    kernels = (jnp.full((2, 2), 0.5),)
    constants = CONSTANTS._replace(threshold=1e-6, depression=0.0, scale=1.0)

    def steps_taken(repeats):
        new, rates = sleep_phase(kernels, jnp.ones(2), (jnp.array(1.0),), constants, jax.random.key(0),
                                 base_steps=3, growth_steps=2, growth_repeats=repeats)
        np.testing.assert_allclose(rates, 1.0)
        w, steps = 0.5, 0
        while not np.isclose(w, float(new[0][0, 0]), rtol=1e-6):
            w, steps = w + 0.01 * (1 / (1 + np.exp(-w))), steps + 1
            assert steps < 100
        return steps

    assert [steps_taken(k) for k in (0, 1, 3)] == [3, 5, 9]
    traced = jax.jit(lambda k: sleep_phase(kernels, jnp.ones(2), (jnp.array(1.0),), constants, jax.random.key(0),
                                           base_steps=3, growth_steps=2, growth_repeats=k)[0][0])
    np.testing.assert_allclose(traced(jnp.array(3)), sleep_phase(
        kernels, jnp.ones(2), (jnp.array(1.0),), constants, jax.random.key(0), base_steps=3, growth_steps=2,
        growth_repeats=3)[0][0], rtol=1e-6)


def test_data_based_normalisation_factors():
    """α_l = λ_{l-1} / λ_l with λ_l = max(largest positive weight, largest activation)."""
    kernels = (jnp.array([[0.5, -2.0], [0.25, 0.1]]), jnp.array([[3.0], [-1.0]]))
    peaks = layer_peaks(kernels, jnp.array([4.0, 2.0]))
    np.testing.assert_allclose(peaks, [4.0, 3.0])  # λ_0 = max(0.5, 4), λ_1 = max(3, 2)
    np.testing.assert_allclose([float(s) for s in layer_scales(peaks)], [1 / 4, 4 / 3])


def test_input_spike_rate_follows_the_mean_input():
    kernels = (jnp.zeros((3, 2)),)
    probability = jnp.array([0.0, 0.2, 0.8])
    constants = CONSTANTS._replace(threshold=1e9)  # no postsynaptic spikes: only the input layer is active
    _, rates = sleep_phase(kernels, probability, (jnp.array(1.0),), constants, jax.random.key(3), base_steps=4000)
    assert float(rates[0]) == pytest.approx(1.0 / 3.0, abs=0.01)  # mean of the three probabilities
    assert float(rates[1]) == 0.0


def test_lateral_inhibition_subtracts_the_layer_mean_drive():
    """Drives 1, 2, 3 every step (decay 0, no plasticity): γ = 0 lets all fire, γ = 1 leaves only 3 − 2 > 0.5."""
    kernels = (jnp.array([[1.0, 2.0, 3.0]]),)
    constants = CONSTANTS._replace(scale=1.0, threshold=0.5, decay=0.0, potentiation=0.0, depression=0.0)

    def hidden_rate(inhibition):
        _, rates = sleep_phase(kernels, jnp.ones(1), (jnp.array(1.0),), constants._replace(inhibition=inhibition),
                               jax.random.key(0), base_steps=20)
        return float(rates[1])

    assert hidden_rate(0.0) == pytest.approx(1.0)
    assert hidden_rate(1.0) == pytest.approx(1.0 / 3.0)  # drives −1, 0, 1 after inhibition


def test_input_contrast_removes_the_flat_part_and_keeps_the_peak_rate():
    mean = jnp.array([0.2, 0.4, 0.6])
    np.testing.assert_allclose(sleep_input_probability(mean, 0.5), [0.1, 0.2, 0.3], rtol=1e-6)  # κ = 0: r · x̄
    # κ = 1: relu(x̄ − 0.4) = [0, 0, 0.2], rescaled so the largest input keeps r · max x̄ = 0.3
    np.testing.assert_allclose(sleep_input_probability(mean, 0.5, 1.0), [0.0, 0.0, 0.3], rtol=1e-6, atol=1e-7)


def test_input_plasticity_zero_freezes_only_the_first_kernel():
    kernels = (jnp.full((2, 3), 0.5), jnp.full((3, 2), 0.5))
    constants = CONSTANTS._replace(threshold=1e-6, input_plasticity=0.0)
    new, rates = sleep_phase(kernels, jnp.ones(2), (jnp.array(1.0), jnp.array(1.0)), constants, jax.random.key(0),
                             base_steps=5)
    assert float(rates[2]) > 0.0
    np.testing.assert_array_equal(new[0], kernels[0])
    assert not np.allclose(new[1], kernels[1])


def _trained_setup():
    net = rulelab.mlp((6, 8, 3), "relu")
    params = net.init(jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (32, 6))
    return net, params, Batch(x, jnp.zeros(32, jnp.int32))


def test_sleep_replay_end_task_changes_kernels_not_biases_and_counts_tasks():
    net, params, batch = _trained_setup()
    rule = rulelab.make_rule("sleep_replay", net, sleep_steps=30, sleep_steps_growth=10, sleep_scale=4.0)
    state = rule.init(jax.random.key(2), params)
    end_task = jax.jit(rule.end_task)
    new_params, state, metrics = end_task(params, state, batch, key=jax.random.key(3))
    assert int(state.tasks_slept) == 1
    np.testing.assert_allclose(state.input_mean, jnp.mean(batch.x, axis=0), rtol=1e-6)
    assert metrics["sleep_spike_rate"].shape == (3,) and float(metrics["sleep_spike_rate"][1]) > 0
    assert not np.allclose(new_params[0]["kernel"], params[0]["kernel"])
    for new, old in zip(new_params, params):
        np.testing.assert_array_equal(new["bias"], old["bias"])
    _, state, _ = end_task(new_params, state, Batch(jnp.zeros_like(batch.x), batch.y), key=jax.random.key(4))
    # the sleep input is the mean over tasks seen: the second task's mean input was zero
    np.testing.assert_allclose(state.input_mean, jnp.mean(batch.x, axis=0) / 2, rtol=1e-6)


def test_sleep_replay_vmaps_over_traced_constants():
    net, params, batch = _trained_setup()

    def sleep_with(scale, key):
        rule = rulelab.make_rule("sleep_replay", net, sleep_steps=20, sleep_steps_growth=0, sleep_scale=scale)
        return rule.end_task(params, rule.init(key, params), batch, key=key)[2]["sleep_spike_rate"]

    rates = jax.jit(jax.vmap(sleep_with))(jnp.array([0.0, 8.0]), jax.random.split(jax.random.key(0), 2))
    assert float(rates[0, 1]) == 0.0 and float(rates[1, 1]) > 0.0  # no drive, no hidden spikes


def test_update_is_the_inner_rule():
    net, params, batch = _trained_setup()
    rule = rulelab.make_rule("sleep_replay", net, inner="feedback_alignment")
    inner = rulelab.make_rule("feedback_alignment", net)
    got = rule.update(params, rule.init(jax.random.key(1), params), batch, key=jax.random.key(2))[0]
    want = inner.update(params, inner.init(jax.random.key(1), params), batch, key=jax.random.key(2))[0]
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_sleep_improves_class_incremental_split_digits():
    """The reproduction (docs/continual.md): default constants, 5 seeds, test set; sleep beats fine-tuning."""
    from rulelab.harness.continual import ContinualConfig, run_continual
    from rulelab.tasks.continual import load_continual_suite

    result = run_continual(load_continual_suite("split-digits"), "class", ["fine_tuning", "sleep_replay"],
                           config=ContinualConfig(), num_seeds=5, progress=False)
    accuracy = result.runs.groupby("rule")["average_accuracy"].mean()
    assert accuracy["fine_tuning"] < 0.25
    assert accuracy["sleep_replay"] > accuracy["fine_tuning"] + 0.08
