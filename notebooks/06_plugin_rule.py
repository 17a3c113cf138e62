# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Writing a new rule as a plugin, and sweeping it against backprop
#
# A rulelab rule is two pure functions, exactly like an optax transform:
#
# ```python
# state = rule.init(key, params)
# updates, state, metrics = rule.update(params, state, batch, key=key)   # updates: gradient-signed, shaped like params
# ```
#
# Here we write one from scratch: **sign-only direct feedback alignment** (sDFA; Frenkel, Lefebvre & Bol 2021,
# *Front. Neurosci.* 15:629892). Like direct feedback alignment it sends the output error straight to every hidden
# layer through a fixed random matrix, but only its sign:
#
# `δ_l = (sign(e) · s·D_l) ⊙ f'(a_l) / batch`,  `e = softmax(z) − onehot(y)`,  `ΔW_l = h_lᵀ δ_l`,
#
# while the output layer keeps its exact error. Then we check it, sweep it against backprop and against the rule
# shipped by the example plugin package (`examples/plugin_rule`, direct random target projection), and see how
# a package makes it available to everyone.

# %%
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
from IPython.display import Image, display

import rulelab
from rulelab.rules.credit_assignment import direct_deltas, layer_updates, output_error
from rulelab.sweep import NetworkSpec, RuleSpec, SweepConfig, TrainingSpec, check_rule, run_sweep
from rulelab.sweep.checks import format_results
from rulelab.sweep.notebooks import notebook_settings
from rulelab.sweep.summary import final_rows, format_summary

settings = notebook_settings("06_plugin_rule")
small = settings.small


# %% [markdown]
# ## 1. The rule
# Everything the rule owns (the fixed matrices `D_l`) lives in its state, a NamedTuple; the numeric
# hyperparameter `feedback_scale` is used as a traced array, so a sweep can vmap over it without recompiling.

# %%
class SignFeedbackState(NamedTuple):
    feedback: tuple[jax.Array, ...]  # D_l: [classes, out_l], one per hidden layer


def sign_direct_feedback_alignment(net: rulelab.Network, *, feedback_scale: float = 1.0) -> rulelab.LearningRule:
    """Sign-only DFA (Frenkel et al. 2021): δ_l = (sign(e)·s·D_l) ⊙ f'(a_l) / batch; output layer: exact error."""
    classes = net.sizes[-1]
    shapes = [(classes, net.sizes[l + 1]) for l in range(net.num_layers - 1)]

    def init(key, params):
        del params
        keys = jax.random.split(key, max(len(shapes), 1))
        return SignFeedbackState(tuple(jax.random.normal(k, s) / jnp.sqrt(classes) for k, s in zip(keys, shapes)))

    def update(params, state, batch, *, key):
        del key
        logits, activity = net.apply(params, batch.x)
        error = output_error(logits, batch.y)  # (softmax − onehot) / batch
        signs = jnp.sign(error) / logits.shape[0]
        hidden = direct_deltas(net, activity, signs, [feedback_scale * d for d in state.feedback])[:-1]
        updates = layer_updates(activity, (*hidden, error))
        return updates, state, {"loss": rulelab.softmax_cross_entropy(logits, batch.y)}

    return rulelab.LearningRule(init, update)


NAME = "sign_direct_feedback_alignment"
if NAME not in rulelab.list_rules():  # registering twice (re-running this cell) is refused by the registry
    rulelab.register_rule(NAME)(sign_direct_feedback_alignment)

# %% [markdown]
# ## 2. Check it
# `check_rule` (or `rulelab check-rule NAME` in a shell) runs the conformance checks one by one: the interface,
# shapes, finiteness, traced hyperparameters under `vmap`, `jit` against eager, determinism, and whether a few
# hundred SGD steps reduce the loss on digits. A rule that breaks the contract is told what failed instead of
# meeting a traceback deep inside a sweep. Here is a typical slip, forgetting the biases, next to the real rule.

# %%
print(format_results(NAME, check_rule(NAME, learn=not small)))


def forgot_the_biases(net, **hyperparameters):
    rule = sign_direct_feedback_alignment(net, **hyperparameters)

    def update(params, state, batch, *, key):
        updates, state, metrics = rule.update(params, state, batch, key=key)
        return tuple({"kernel": u["kernel"]} for u in updates), state, metrics

    return rulelab.LearningRule(rule.init, update)


if "forgot_the_biases" not in rulelab.list_rules():
    rulelab.register_rule("forgot_the_biases")(forgot_the_biases)
broken = check_rule("forgot_the_biases", learn=False)
print(format_results("forgot_the_biases", broken))
assert all(r.passed for r in check_rule(NAME, learn=False)) and not all(r.passed for r in broken)

# %% [markdown]
# ## 3. Sweep it against backprop and the example plugin
# A rule that is not packaged yet can be named `module:factory`; here the example plugin's source folder is put on
# the path and its DRTP rule is swept without installing anything. After `pip install -e examples/plugin_rule` the
# same rule is simply `direct_random_target_projection`, found through the package's `rulelab.rules` entry point.

# %%
sys.path.insert(0, str(settings.root / "examples" / "plugin_rule" / "src"))
DRTP = "rulelab_drtp:direct_random_target_projection"
config = SweepConfig(
    name="plugin_vs_backprop",
    dataset="digits",
    rules=(
        RuleSpec("backprop"),
        RuleSpec(NAME, grid={"feedback_scale": (1.0,) if small else (0.5, 1.0, 2.0)}),
        RuleSpec(DRTP, grid={"feedback_scale": (1.0,) if small else (0.5, 1.0, 2.0)}),
    ),
    seeds=range(2 if small else 6),
    grid={"learning_rate": (1e-3,) if small else (3e-4, 1e-3, 3e-3)},
    network=NetworkSpec(hidden=((32,),) if small else ((128,),)),
    training=TrainingSpec(optimizer="adam", steps=300 if small else 3000, eval_every=50 if small else 100),
)
result = run_sweep(config, settings.out_dir, progress=not small)
print(format_summary(result.summary))
display(Image(filename=str(result.out_dir / "learning_curves.png")))

# %% [markdown]
# All three learn digits above chance (10%), and backprop best. Neither sDFA nor DRTP sends an error through the
# forward weights' transpose, and their hidden layers never see how wrong the output is, only its sign pattern or
# the label. The sign-only signal is the weaker of the two here: whenever no probability is exactly 0 or 1,
# `sign(e) = 1 − 2·onehot(y)`, i.e. DRTP's label projection (times −2) plus a constant drive `Σ_k D_k` that every
# example shares and that carries no information about the class.

# %%
accuracy = final_rows(result.frame).groupby("rule")["test_accuracy"].mean()
print(accuracy.round(3))
assert (accuracy > 0.3).all() and accuracy.idxmax() == "backprop"

# %% [markdown]
# ## 4. Make it a package
# `examples/plugin_rule/` is a complete plugin: a module with the factory and one entry point in its
# `pyproject.toml`. Copy it, rename the package and the entry point, then
#
# ```bash
# pip install -e path/to/your_plugin
# rulelab check-rule your_rule          # all conformance checks, PASS/FAIL with the reason
# rulelab sweep your_sweep.toml         # rules = ["backprop", "your_rule"]
# ```

# %%
print((settings.root / "examples" / "plugin_rule" / "pyproject.toml").read_text())
