"""Figures of continual-learning results (matplotlib, Agg backend, PNG), drawn from the tidy accuracy frame."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def mean_accuracy_matrices(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per method, R[i, j] averaged over seeds (first hyperparameter setting): ``{method: [tasks, tasks]}``."""
    frame = frame[frame["hparam_index"] == 0]
    matrices = {}
    for rule, group in frame.groupby("rule", sort=False):
        mean = group.groupby(["trained_task", "eval_task"])["accuracy"].mean()
        matrices[rule] = mean.unstack("eval_task").sort_index().to_numpy()
    return matrices


def plot_accuracy_matrices(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """One heatmap per method of R[i, j] (rows: after training task i; columns: task j), seed-averaged."""
    matrices = mean_accuracy_matrices(frame)
    columns = min(3, len(matrices))
    rows = -(-len(matrices) // columns)
    num_tasks = next(iter(matrices.values())).shape[0]
    cell = 0.45 * num_tasks + 1.2
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns + 0.8, cell * rows + 0.6), squeeze=False)
    image = None
    for axis, (rule, matrix) in zip(axes.ravel(), matrices.items()):
        image = axis.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis")
        if num_tasks <= 10:
            for (i, j), value in np.ndenumerate(matrix):
                axis.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7,
                          color="white" if value < 0.6 else "black")
        axis.set(title=rule, xlabel="evaluated task j", ylabel="after training task i",
                 xticks=range(num_tasks), yticks=range(num_tasks))
        axis.title.set_fontsize(9)
    for axis in axes.ravel()[len(matrices):]:
        axis.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="accuracy")
    fig.suptitle(title or "accuracy matrices")
    return _save(fig, path)


def plot_accuracy_over_tasks(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Left: mean accuracy over the tasks seen so far after each task; right: accuracy on the first task.

    Mean ± std over seeds, per method.
    """
    frame = frame[frame["hparam_index"] == 0]
    fig, (ax_seen, ax_first) = plt.subplots(1, 2, figsize=(11, 4))
    for rule, group in frame.groupby("rule", sort=False):
        seen = group[group["eval_task"] <= group["trained_task"]]
        per_seed = seen.groupby(["trained_task", "seed"])["accuracy"].mean().groupby("trained_task")
        first = group[group["eval_task"] == 0].groupby("trained_task")["accuracy"]
        for axis, stats in ((ax_seen, per_seed), (ax_first, first)):
            mean, std = stats.mean(), stats.std(ddof=0).fillna(0.0)
            tasks = mean.index.to_numpy() + 1
            (line,) = axis.plot(tasks, mean.to_numpy(), marker="o", label=rule)
            axis.fill_between(tasks, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax_seen.set(xlabel="tasks trained", ylabel="mean accuracy on tasks seen so far", ylim=(0, 1.02),
                title=title or "accuracy over tasks")
    ax_first.set(xlabel="tasks trained", ylabel="accuracy on task 1", ylim=(0, 1.02), title="first task")
    num_tasks = int(frame["trained_task"].max()) + 1
    for axis in (ax_seen, ax_first):
        axis.set_xticks(range(1, num_tasks + 1))
    ax_seen.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
