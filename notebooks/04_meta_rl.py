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
# # Meta-reinforcement learning and dopamine
#
# Wang, Kurth-Nelson, Kumaran, Tirumala, Soyer, Leibo, Hassabis & Botvinick (2018, *Nat. Neurosci.* 21:860)
# proposed that the prefrontal cortex is a recurrent network whose weights, slowly trained by dopamine-driven RL
# across many episodes, implement a fast learning algorithm *in its activity*. Three pictures of that story:
#
# 1. **Bandits**: a frozen LSTM trained by A2C across episodes explores and exploits new two-armed bandits; its
#    cumulative regret is compared with Thompson sampling and UCB on the same episodes.
# 2. **Two-step task**: stay probabilities after rewarded / unrewarded trials with common / rare transitions, the
#    signature that separates model-based from model-free behaviour.
# 3. **Dopamine**: the TD model of Schultz, Dayan & Montague (1997): the reward-prediction error moves from the
#    reward to the cue that predicts it, and dips below zero when a predicted reward is omitted.
#
# `small` trains for a few hundred episodes (the learner is barely trained: the point is that it runs);
# `full` trains for the tens of thousands the paper's curves need.

# %%
import numpy as np
import pandas as pd
from IPython.display import Image, display

from rulelab.harness.conditioning import ConditioningConfig, write_conditioning
from rulelab.harness.meta_rl import run_meta_rl
from rulelab.sweep.notebooks import notebook_settings
from rulelab.tasks.rl import make_meta_task

settings = notebook_settings("04_meta_rl")
small = settings.small
train_episodes = 128 if small else 20_000
eval_episodes = 100 if small else 1000

# %% [markdown]
# ## 1. Cumulative regret on independent bandits

# %%
bandit_dir = settings.out_dir / "bandit"
bandit = run_meta_rl(make_meta_task("bandit-independent"), ("meta_a2c",), num_seeds=2 if small else 4,
                     train_episodes=train_episodes, eval_episodes=eval_episodes, out_dir=bandit_dir)
print("expected cumulative regret at the end of an episode:")
for name, row in bandit["learners"].items():
    print(f"  {name:12s} {row['cumulative_regret_mean']:.2f} ± {row['cumulative_regret_std']:.2f}")
for name, value in bandit["reference"].items():
    print(f"  {name:12s} {value:.2f}")
display(Image(filename=str(bandit_dir / "cumulative_regret.png")))

# %% [markdown]
# The reference policies order as theory says (Lai & Robbins): Thompson sampling and UCB keep regret
# logarithmic in the number of pulls, the random policy's grows linearly. A fully trained meta-A2C learner lands
# near Thompson sampling (Wang et al. Fig. 2).

# %%
reference = bandit["reference"]
assert reference["thompson"] < reference["random"] and reference["ucb"] < reference["random"]

# %% [markdown]
# ## 2. Two-step task: stay probabilities

# %%
two_step_dir = settings.out_dir / "two_step"
run_meta_rl(make_meta_task("two-step"), ("meta_a2c",), num_seeds=2 if small else 4, train_episodes=train_episodes,
            eval_episodes=eval_episodes, out_dir=two_step_dir)
display(Image(filename=str(two_step_dir / "stay_probabilities.png")))
stays = pd.read_parquet(two_step_dir / "stay_probabilities.parquet")
print(stays.groupby(["policy", "rewarded", "common"])["stay_probability"].mean().unstack(["rewarded", "common"]).round(2))
assert stays["stay_probability"].between(0, 1).all()

# %% [markdown]
# ## 3. The reward-prediction error moves to the cue
# TD(0) with a tapped-delay-line stimulus representation; a cue (CS) at t = 5 predicts a reward 10 steps later.

# %%
conditioning_dir = settings.out_dir / "conditioning"
conditioning = write_conditioning(ConditioningConfig(acquisition_trials=150 if small else 300), conditioning_dir)
display(Image(filename=str(conditioning_dir / "td_errors.png")))
print({k: round(v, 3) for k, v in conditioning.items()})

# %% [markdown]
# After learning, the error at the (fully predicted) reward is near zero, the cue itself now carries a positive
# error of about the reward's size, and omitting the reward gives a negative error at the time it was expected:
# the three dopamine observations of Schultz et al. (1997).

# %%
assert conditioning["delta_at_cs_final"] > 0.8
assert abs(conditioning["delta_at_reward_final"]) < 0.1
assert conditioning["delta_at_omission"] < -0.8
assert np.isfinite(list(conditioning.values())).all()
