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
# # Meta-learning Oja's rule
#
# Can a plasticity rule be *found* by optimisation? Confavreux, Zenke, Agnes, Lillicrap & Vogels (2020, NeurIPS)
# parameterise a rule as a polynomial in presynaptic rate x, postsynaptic rate y and weight w,
#
# `Δw = η Σ_{α,β,γ ∈ {0,1,2}} θ_{αβγ} x^α y^β w^γ`   (27 coefficients),
#
# and meta-learn θ so that a linear neuron trained with it ends with its weight vector on the first principal
# component of its inputs, at unit norm. The known answer is Oja's rule (1982), `Δw = η (x y − y² w)`: θ[x·y] = 1,
# θ[y²·w] = −1, every other coefficient 0, up to a positive scale.
#
# Because every inner learning step is a pure JAX function, the meta-gradient is `jax.grad` through the whole
# unrolled inner loop. This notebook runs `experiments/meta_learn_oja.py` (small: the gradient meta-optimiser only;
# full: also the evolution strategy) and reads its results.

# %%
import importlib.util
import json

from IPython.display import Image, display

from rulelab.sweep.notebooks import notebook_settings

settings = notebook_settings("05_meta_learning_oja")
small = settings.small

spec = importlib.util.spec_from_file_location("meta_learn_oja", settings.root / "experiments" / "meta_learn_oja.py")
meta_learn_oja = importlib.util.module_from_spec(spec)
spec.loader.exec_module(meta_learn_oja)

arguments = ["--out", str(settings.out_dir)]
if small:
    arguments += ["--optimizers", "gradient", "--meta-steps", "150", "--num-tasks", "8", "--inner-steps", "100",
                  "--inner-learning-rate", "0.1", "--eval-tasks", "64"]
assert meta_learn_oja.main(arguments) == 0
summary = json.loads((settings.out_dir / "summary.json").read_text())

# %% [markdown]
# ## Meta-training
# The meta-loss (misalignment with the first principal component plus a norm penalty, averaged over random input
# distributions) and the cosine between θ and Oja's coefficient vector, over meta-steps.

# %%
display(Image(filename=str(settings.out_dir / "meta_learning_curves.png")))

# %% [markdown]
# ## What was learned
# The learned coefficients next to Oja's. The two Oja terms dominate and have opposite signs of about equal size.

# %%
display(Image(filename=str(settings.out_dir / "learned_coefficients.png")))
optimizers = [name for name in ("gradient", "evolution") if name in summary]
for name in optimizers:
    learned = summary[name]
    top = sorted(learned["coefficients"].items(), key=lambda item: -abs(item[1]))[:4]
    print(f"{name}: cosine to Oja {learned['cosine_to_oja']:.3f}; largest terms "
          + ", ".join(f"{term} {value:+.2f}" for term, value in top))
    print(f"  held-out tasks: |cos(w, PC1)| = {learned['evaluation']['alignment_mean']:.3f}, "
          f"|w| = {learned['evaluation']['weight_norm_mean']:.3f}")
print(f"initial θ: cosine to Oja {summary['initial']['cosine_to_oja']:.3f}")

# %%
for name in optimizers:
    learned = summary[name]
    assert learned["cosine_to_oja"] > 0.75  # a random θ has cosine ~ N(0, 1/27) with Oja's vector
    assert learned["coefficients"]["x*y"] > 0 > learned["coefficients"]["y^2*w"]
    assert learned["evaluation"]["alignment_mean"] > 0.9
