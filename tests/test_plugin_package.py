"""The example plugin package (examples/plugin_rule): installed with pip, found by entry point, checked, swept.

The module fixture pip-installs the package (editable, no network, no build isolation) into the running
interpreter's environment, the way a user installs a plugin, unless it is already there.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.sweep import NetworkSpec, RuleSpec, SweepConfig, TrainingSpec, check_rule, run_sweep

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "examples" / "plugin_rule"
DISTRIBUTION = "rulelab-drtp"
RULE = "direct_random_target_projection"


def plugin_installed() -> bool:
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return any(ep.name == RULE and ep.group == "rulelab.rules" for ep in distribution.entry_points)


@pytest.fixture(scope="module")
def plugin():
    if not plugin_installed():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
             "--editable", str(PLUGIN_DIR)],
            check=True, capture_output=True, text=True, timeout=600,
        )
        importlib.invalidate_caches()
        site.addsitedir(sysconfig.get_paths()["purelib"])  # read the new .pth so this process can import it
    assert plugin_installed()
    return RULE


def test_plugin_is_found_through_its_entry_point(plugin):
    assert plugin in rulelab.list_rules()
    assert rulelab.registry.get_factory(plugin).__module__ == "rulelab_drtp"
    assert rulelab.rule_hyperparameters(plugin) == {"feedback_scale": 1.0}


@pytest.fixture(scope="module")
def problem(plugin):
    net = rulelab.mlp((6, 5, 4, 3), "tanh")
    params = net.init(jax.random.key(0))
    batch = rulelab.Batch(jax.random.normal(jax.random.key(1), (7, 6)), jnp.array([0, 1, 2, 0, 1, 2, 2]))
    rule = rulelab.make_rule(plugin, net, feedback_scale=1.5)
    state = rule.init(jax.random.key(2), params)
    return net, params, batch, rule, state


def test_output_layer_learns_exactly_as_backprop(problem):
    net, params, batch, rule, state = problem
    updates, _, metrics = rule.update(params, state, batch, key=jax.random.key(3))
    exact, _, exact_metrics = rulelab.make_rule("backprop", net).update(params, None, batch, key=jax.random.key(3))
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(updates[-1][name], exact[-1][name], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(metrics["loss"], exact_metrics["loss"], rtol=1e-6)


def test_hidden_layers_learn_from_the_projected_target_not_the_output(problem):
    net, params, batch, rule, state = problem
    updates, _, _ = rule.update(params, state, batch, key=jax.random.key(3))
    # no feedback pathway: changing the output weights changes no hidden-layer update
    rewired = (*params[:-1], {"kernel": 5.0 * params[-1]["kernel"] + 1.0, "bias": params[-1]["bias"] - 2.0})
    rewired_updates, _, _ = rule.update(rewired, state, batch, key=jax.random.key(3))
    for layer in (0, 1):
        for name in ("kernel", "bias"):
            np.testing.assert_allclose(rewired_updates[layer][name], updates[layer][name], rtol=1e-6)
    # δ_l = (y* · s·B_l) ⊙ f'(a_l) / batch and ΔW_l = h_lᵀ δ_l, written out for both hidden layers
    _, activity = net.apply(params, batch.x)
    targets = jax.nn.one_hot(batch.y, 3) / batch.x.shape[0]
    for layer in (0, 1):
        delta = (targets @ (1.5 * state.projections[layer])) * (1.0 - jnp.tanh(activity.preactivations[layer]) ** 2)
        np.testing.assert_allclose(updates[layer]["kernel"], activity.inputs[layer].T @ delta, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(updates[layer]["bias"], delta.sum(axis=0), rtol=1e-5, atol=1e-7)


def test_plugin_passes_every_conformance_check(plugin):
    results = check_rule(plugin)
    assert all(r.passed for r in results), results
    assert len(results) == 9


def test_plugin_is_swept_by_name(plugin, tmp_path):
    """The installed rule sweeps like a built-in one (notebooks/06 sweeps it against backprop at length)."""
    config = SweepConfig(
        name="drtp", rules=(RuleSpec(plugin, grid={"feedback_scale": (0.5, 2.0)}),), seeds=(0, 1),
        grid={"learning_rate": (0.1,)}, network=NetworkSpec(hidden=((32,),)),
        training=TrainingSpec(optimizer="sgd", steps=100, eval_every=50),
    )
    result = run_sweep(config, tmp_path, progress=False)
    final = result.frame[result.frame["step"] == 100]
    assert set(final["rule"]) == {plugin} and sorted(final["feedback_scale"]) == [0.5, 0.5, 2.0, 2.0]
    assert (final["diverged_at"] == -1).all()
    assert final["test_accuracy"].mean() > 0.5  # chance is 0.1


BROKEN_RULE = '''
import rulelab

def transposed(net):
    """Backprop whose first-layer kernel update comes back transposed."""
    inner = rulelab.make_rule("backprop", net)

    def update(params, state, batch, *, key):
        updates, state, metrics = inner.update(params, state, batch, key=key)
        return (dict(updates[0], kernel=updates[0]["kernel"].T), *updates[1:]), state, metrics

    return rulelab.LearningRule(inner.init, update)
'''


def test_a_broken_rule_is_reported_with_what_failed(tmp_path, monkeypatch, capsys):
    from rulelab import registry
    from rulelab.cli import main

    (tmp_path / "broken_rule.py").write_text(BROKEN_RULE)
    (tmp_path / "sweep.toml").write_text('rules = ["broken_rule:transposed"]\n[training]\nsteps = 20\neval_every = 10\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_BUILTIN", dict(registry._BUILTIN))  # the broken rule never outlives this test

    assert main(["check-rule", "broken_rule:transposed"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  updates have the structure, shapes and dtypes of params" in out
    assert "updates[0]['kernel'] is float32[32, 64], expected float32[64, 32]" in out
    assert main(["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "rule 'broken_rule:transposed' fails the conformance checks: updates have the structure" in err
    assert not (tmp_path / "out").exists()
