"""Figures for the RL suites: cumulative regret, training curves, two-step stay probabilities, conditioning δ."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path) -> Path:
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_cumulative_regret(frame: pd.DataFrame, path, title: str = "") -> Path:
    """Cumulative regret over trials, mean ± std over seeds; reference policies dashed."""
    fig, axis = plt.subplots(figsize=(6.5, 4.5))
    for (policy, kind), group in frame.groupby(["policy", "kind"], sort=False):
        stats = group.groupby("trial")["cumulative_regret"].agg(["mean", "std"]).fillna(0.0)
        trials = stats.index.to_numpy() + 1
        (line,) = axis.plot(trials, stats["mean"], linestyle="--" if kind == "reference" else "-", label=policy)
        axis.fill_between(trials, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                          color=line.get_color(), alpha=0.2)
    axis.set(xlabel="trial", ylabel="expected cumulative regret", title=title or "cumulative regret")
    axis.legend(fontsize=8)
    return _save(fig, path)


def plot_training_curves(frame: pd.DataFrame, path, title: str = "") -> Path:
    """Mean episode regret during training against episodes seen, one line per learner (mean over seeds)."""
    fig, axis = plt.subplots(figsize=(6.5, 4.5))
    for learner, group in frame.groupby("learner", sort=False):
        stats = group.groupby("episodes")["episode_regret"].mean()
        axis.plot(stats.index, stats.to_numpy(), marker="o", markersize=3, label=learner)
    axis.set(xlabel="training episodes", ylabel="regret per episode (training policy)", title=title or "training")
    axis.legend(fontsize=8)
    return _save(fig, path)


def plot_stay_probabilities(frame: pd.DataFrame, path) -> Path:
    """Wang et al. 2018 Fig. 4 style: P(stay) after rewarded / unrewarded trials, common vs rare transition."""
    policies = list(dict.fromkeys(frame["policy"]))
    fig, axes = plt.subplots(1, len(policies), figsize=(3.2 * len(policies), 3.6), squeeze=False, sharey=True)
    for axis, policy in zip(axes[0], policies):
        group = frame[frame["policy"] == policy]
        for offset, (common, color, label) in enumerate(((1, "tab:blue", "common"), (0, "tab:red", "rare"))):
            rows = [group[(group["rewarded"] == r) & (group["common"] == common)]["stay_probability"]
                    for r in (1, 0)]
            means = [row.mean() for row in rows]
            errors = [row.std() if len(row) > 1 else 0.0 for row in rows]
            axis.bar(np.arange(2) * 3 + offset, means, yerr=errors, color=color, label=label)
        axis.set_xticks([0.5, 3.5], ["rewarded", "unrewarded"])
        axis.set(title=policy, ylim=(0.0, 1.0))
    axes[0][0].set_ylabel("stay probability")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def plot_conditioning(td_errors: np.ndarray, phases: list[str], cs_index: int, reward_index: int, path) -> Path:
    """δ over time within a trial across training (heat map) and selected trials (lines)."""
    fig, (heat, lines) = plt.subplots(1, 2, figsize=(12, 4.5))
    bound = max(float(np.abs(td_errors).max()), 1e-6)
    image = heat.imshow(td_errors, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
    heat.set(xlabel="time step within trial", ylabel="trial", title="TD error δ across training")
    for index, name in ((cs_index, "CS"), (reward_index, "reward")):
        heat.axvline(index, color="k", linestyle=":", linewidth=1)
        heat.text(index, -1, name, ha="center", va="bottom", fontsize=8)
    fig.colorbar(image, ax=heat)
    acquisition = [i for i, p in enumerate(phases) if p == "acquisition"]
    picks = sorted({acquisition[len(acquisition) * k // 100] for k in (0, 1, 3, 10)} | {acquisition[-1]})
    chosen = {f"acquisition trial {i + 1}": i for i in picks}
    for phase in ("omission", "extinction"):
        indices = [i for i, p in enumerate(phases) if p == phase]
        if indices:
            chosen[f"{phase} ({'first' if phase == 'omission' else 'last'})"] = indices[0 if phase == "omission"
                                                                                           else -1]
    for label, index in chosen.items():
        lines.plot(td_errors[index], label=label)
    lines.axhline(0.0, color="grey", linewidth=0.8)
    lines.set(xlabel="time step within trial", ylabel="δ", title="δ in selected trials")
    lines.legend(fontsize=8)
    return _save(fig, path)
