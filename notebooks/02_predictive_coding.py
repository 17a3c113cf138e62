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
# # Predictive coding converges to backprop as the nudge shrinks
#
# In predictive coding (Whittington & Bogacz 2017) every hidden layer has value nodes `v_l` that predict the
# next layer; inference relaxes the values down the energy
#
# `F(v) = Σ_l ½‖v_l − μ_l‖² + β · CE(μ_out, y)`
#
# and the weights then follow local, Hebbian-like updates `ΔW_l ∝ f(v_{l−1})ᵀ ε_l`. At the inference fixed
# point the energy is `β·loss + O(β²)`, so the rule's update `(1/β) ∂F/∂θ` tends to the backprop gradient as the
# output nudge β → 0, with an error that shrinks linearly in β (Millidge, Song, Salvatori, Lukasiewicz & Bogacz
# 2022). This notebook measures both: the gap to backprop against β, and the energy falling during inference.
#
# Every number is one vmapped program: β and the number of inference steps are traced hyperparameters of the rule.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import rulelab
from rulelab.sweep.notebooks import notebook_settings
from rulelab.tasks import load_dataset

settings = notebook_settings("02_predictive_coding")
settings.out_dir.mkdir(parents=True, exist_ok=True)
small = settings.small

digits = load_dataset("digits")
net = rulelab.mlp((digits.num_features, 32, 32, digits.num_classes), "tanh")
params = net.init(jax.random.key(0))
batch = rulelab.Batch(jnp.asarray(digits.x_train[:64]), jnp.asarray(digits.y_train[:64]))
exact, _, _ = rulelab.make_rule("backprop", net).update(params, None, batch, key=jax.random.key(1))

INFERENCE_STEPS = 200 if small else 500
INFERENCE_RATE = 0.2


def pc_update(output_nudge, inference_steps=INFERENCE_STEPS):
    """The rule's (updates, metrics) on the batch, for a (possibly traced) nudge and number of inference steps."""
    rule = rulelab.make_rule("predictive_coding", net, inference_steps=inference_steps,
                             inference_rate=INFERENCE_RATE, output_nudge=output_nudge)
    updates, _, metrics = rule.update(params, rule.init(jax.random.key(2), params), batch, key=jax.random.key(1))
    return updates, metrics


# %% [markdown]
# ## The gap to backprop against the nudge β
# For each β, the relative error `‖Δ_PC − ∇L‖ / ‖∇L‖` of every layer's weight update and the cosine between them.

# %%
nudges = jnp.logspace(0, -3, 4 if small else 10)
updates, metrics = jax.jit(jax.vmap(pc_update))(nudges)


def relative_error(update, gradient):
    return jnp.linalg.norm(update - gradient) / jnp.linalg.norm(gradient)


errors = np.array([[float(relative_error(u["kernel"][i], g["kernel"])) for u, g in zip(updates, exact)]
                   for i in range(len(nudges))])  # [nudges, layers]
cosines = np.array([[float(rulelab.tree_cosine(u["kernel"][i], g["kernel"])) for u, g in zip(updates, exact)]
                    for i in range(len(nudges))])
print("inference residual at the end (should be ~0):", np.asarray(metrics["inference_residual"]).max())
for beta, row, cos in zip(np.asarray(nudges), errors, cosines):
    print(f"β = {beta:8.4f}: relative error per layer {np.round(row, 4)}, cosine {np.round(cos, 5)}")

fig, axis = plt.subplots(figsize=(5.5, 4))
for layer in range(errors.shape[1]):
    axis.loglog(np.asarray(nudges), errors[:, layer], marker="o", label=f"layer {layer}")
axis.loglog(np.asarray(nudges), errors[0, 0] * np.asarray(nudges), "k:", label="∝ β")
axis.set(xlabel="output nudge β", ylabel="relative error to backprop", title="PC update → backprop gradient")
axis.legend(fontsize=8)
fig.tight_layout()
fig.savefig(settings.out_dir / "nudge_limit.png", dpi=120)
plt.close(fig)
display(Image(filename=str(settings.out_dir / "nudge_limit.png")))

# %% [markdown]
# The error falls with β on every layer, about linearly (the dotted line), and at the smallest β the update points
# the same way as the gradient.

# %%
assert np.all(np.diff(errors, axis=0) < 0), "the gap must shrink as the nudge shrinks"
assert cosines[-1].min() > 0.999
slope = np.polyfit(np.log(np.asarray(nudges)[1:]), np.log(errors[1:, 0]), 1)[0]
print(f"log-log slope of the first layer's error: {slope:.2f} (1 = linear in β)")
assert 0.8 < slope < 1.2

# %% [markdown]
# ## The energy during inference
# The energy after `t` inference steps, for several nudges: `t` is a traced hyperparameter (a `while_loop` bound),
# so the whole curve is one vmapped call. Inference starts at the feed-forward values, where every hidden error is
# zero and `F = β·CE`; it relaxes monotonically to the fixed point.

# %%
steps = jnp.arange(0, 60 if small else 150)
fig, axis = plt.subplots(figsize=(5.5, 4))
energies = {}
for beta in (1.0, 0.1):
    _, trace = jax.jit(jax.vmap(lambda t: pc_update(beta, t)))(steps)
    energies[beta] = np.asarray(trace["energy_final"]) / beta
    axis.plot(np.asarray(steps), energies[beta], label=f"β = {beta:g}")
axis.set(xlabel="inference step t", ylabel="energy F / β", title="inference descends the energy")
axis.legend()
fig.tight_layout()
fig.savefig(settings.out_dir / "energy.png", dpi=120)
plt.close(fig)
display(Image(filename=str(settings.out_dir / "energy.png")))
for beta, energy in energies.items():
    assert np.all(np.diff(energy) <= 1e-6 * abs(energy[0])), f"energy rose during inference at β = {beta}"
    assert energy[-1] < energy[0]
