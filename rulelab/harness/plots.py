"""Standard figures drawn from tidy result frames (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def hidden_angle_columns(frame: pd.DataFrame) -> list[str]:
    """Alignment-angle columns of the hidden layers (the output layer's error is exact for every rule here)."""
    columns = sorted((c for c in frame.columns if c.startswith("alignment_angle_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    return columns[:-1] or columns


def plot_learning_curves(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Test accuracy and hidden-layer alignment angle to backprop over training, mean ± std over seeds per rule."""
    frame = frame.copy()
    angle_columns = hidden_angle_columns(frame)
    frame["hidden_angle"] = frame[angle_columns].mean(axis=1) if angle_columns else np.nan
    fig, (ax_acc, ax_angle) = plt.subplots(1, 2, figsize=(11, 4))
    for rule, group in frame.groupby("rule", sort=False):
        stats = group.groupby("step").agg(
            acc_mean=("test_accuracy", "mean"), acc_std=("test_accuracy", "std"),
            angle_mean=("hidden_angle", "mean"), angle_std=("hidden_angle", "std"),
        ).fillna(0.0)
        steps = stats.index.to_numpy()
        for axis, key in ((ax_acc, "acc"), (ax_angle, "angle")):
            mean, std = stats[f"{key}_mean"].to_numpy(), stats[f"{key}_std"].to_numpy()
            (line,) = axis.plot(steps, mean, label=rule)
            axis.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax_acc.set(xlabel="training step", ylabel="test accuracy", title=title or "learning curves")
    ax_angle.set(xlabel="training step", ylabel="angle to backprop gradient (deg)", title="hidden-layer alignment")
    ax_angle.axhline(90.0, color="grey", linestyle=":", linewidth=1)
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
