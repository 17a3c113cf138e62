"""A third-party package registers a rule through the `rulelab.rules` entry-point group, no edit to rulelab."""

from __future__ import annotations

import sys
import textwrap

import jax
import numpy as np

import rulelab

PLUGIN_SOURCE = textwrap.dedent(
    '''
    import jax
    from rulelab import LearningRule, EmptyState, softmax_cross_entropy

    def scaled_gradient(net, *, scale=0.5):
        """Backprop with every update multiplied by `scale`: ΔW = scale · ∂L/∂W."""
        def init(key, params):
            return EmptyState()
        def update(params, state, batch, *, key):
            loss_fn = lambda p: softmax_cross_entropy(net.apply(p, batch.x)[0], batch.y)
            loss, grads = jax.value_and_grad(loss_fn)(params)
            return jax.tree.map(lambda g: scale * g, grads), state, {"loss": loss}
        return LearningRule(init, update)
    '''
)


def test_entry_point_plugin_is_found_lazily(tmp_path, monkeypatch):
    (tmp_path / "tiny_rule_plugin.py").write_text(PLUGIN_SOURCE)
    dist_info = tmp_path / "tiny_rule_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-rule-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[rulelab.rules]\nscaled_gradient = tiny_rule_plugin:scaled_gradient\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "scaled_gradient" in rulelab.list_rules()
    assert "tiny_rule_plugin" not in sys.modules, "listing must not import the plugin"

    net = rulelab.mlp((5, 7, 3))
    params = net.init(jax.random.key(0))
    batch = rulelab.Batch(jax.random.normal(jax.random.key(1), (8, 5)), jax.numpy.arange(8) % 3)
    plugin = rulelab.make_rule("scaled_gradient", net, scale=0.25)
    backprop = rulelab.make_rule("backprop", net)
    got, _, _ = plugin.update(params, plugin.init(None, params), batch, key=jax.random.key(0))
    exact, _, _ = backprop.update(params, backprop.init(None, params), batch, key=jax.random.key(0))
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(exact)):
        np.testing.assert_allclose(g, 0.25 * e, rtol=1e-6)
