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
# # Catastrophic forgetting and sleep replay
#
# A network trained on a sequence of tasks with plain gradient steps (fine-tuning) overwrites what it learned
# before: *catastrophic forgetting* (McCloskey & Cohen 1989). It is worst in the class-incremental scenario, where
# one shared output layer must tell apart every class seen so far without being told the task (van de Ven, Tuytelaars
# & Tolias 2022). This notebook runs split-digits (5 tasks of 2 classes) and compares fine-tuning with
# experience replay (a small buffer of past examples mixed into every batch) and sleep replay (Tadros, Krishnan,
# Ramyaa & Bazhenov 2022: after each task the network is run as a spiking net on noise with local Hebbian
# plasticity), via `rulelab.harness.continual`.
#
# `R[i, j]` is the accuracy on task j after training task i; the average accuracy is the mean of its last row.

# %%
from IPython.display import Image, display

from rulelab.harness.continual import ContinualConfig, format_continual_table, run_continual
from rulelab.sweep.notebooks import notebook_settings
from rulelab.tasks.continual import load_continual_suite

settings = notebook_settings("03_continual_sleep_replay")
small = settings.small

suite = load_continual_suite("split-digits")
methods = ("fine_tuning", "experience_replay", "sleep_replay") if small else (
    "fine_tuning", "joint", "ewc", "synaptic_intelligence", "experience_replay", "sleep_replay")
scenarios = ("class",) if small else ("task", "domain", "class")
config = ContinualConfig(hidden=(32,) if small else (256, 256), steps_per_task=100 if small else 1000)

# %%
results = {}
for scenario in scenarios:
    results[scenario] = run_continual(suite, scenario, methods, config=config, num_seeds=2 if small else 5,
                                      out_dir=settings.out_dir / scenario, progress=False)
    print(f"--- {scenario}-incremental ---")
    print(format_continual_table(results[scenario]))

# %% [markdown]
# ## Accuracy matrices
# One heat map per method: rows are "after training task i", columns "evaluated on task j". Fine-tuning's lower
# triangle goes dark as each new task is learned: the old tasks are forgotten.

# %%
for scenario in scenarios:
    display(Image(filename=str(settings.out_dir / scenario / "accuracy_matrices.png")))
    display(Image(filename=str(settings.out_dir / scenario / "accuracy_over_tasks.png")))

# %% [markdown]
# ## Average accuracy per scenario

# %%
rows = []
for scenario, result in results.items():
    for method, row in result.summary["rules"].items():
        rows.append((scenario, method, row["average_accuracy_mean"], row["forgetting_mean"]))
        print(f"{scenario:6s} {method:24s} average accuracy {100 * row['average_accuracy_mean']:5.1f}%   "
              f"forgetting {100 * row['forgetting_mean']:5.1f}%")

# %% [markdown]
# The known result holds: class-incremental fine-tuning forgets almost everything (forgetting near 100%, average
# accuracy near one task's share, 20%), and replaying a few stored examples removes most of it. Whether sleep
# replay helps depends on its sleep-phase constants; `experiments/continual_sleep_tuning.py` searches them on a
# validation split. The numbers above are what the defaults give at this size.

# %%
class_summary = results["class"].summary["rules"]
assert class_summary["fine_tuning"]["forgetting_mean"] > 0.8
assert class_summary["experience_replay"]["forgetting_mean"] < 0.5 * class_summary["fine_tuning"]["forgetting_mean"]
assert class_summary["experience_replay"]["average_accuracy_mean"] > class_summary["fine_tuning"]["average_accuracy_mean"]
