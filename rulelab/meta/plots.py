"""Figures for meta-learning runs (matplotlib, Agg backend, PNG), drawn from tidy frames."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_meta_history(frame: pd.DataFrame, path: str | Path, columns: Sequence[str], title: str = "") -> Path:
    """One panel per column of ``columns`` against ``step``, one line per ``optimizer``."""
    fig, axes = plt.subplots(1, len(columns), figsize=(5.5 * len(columns), 4), squeeze=False)
    for axis, column in zip(axes[0], columns):
        for optimizer, group in frame.groupby("optimizer", sort=False):
            axis.plot(group["step"], group[column], label=optimizer)
        axis.set(xlabel="meta-step (gradient) / generation (evolution)", ylabel=column.replace("_", " "))
        if column.endswith("loss") and (frame[column] > 0).all():
            axis.set_yscale("log")
        axis.legend(fontsize=8)
    axes[0][0].set_title(title or "meta-learning")
    return _save(fig, path)


def plot_coefficients(coefficient_sets: Mapping[str, Mapping[str, float]], path: str | Path, title: str = "") -> Path:
    """Grouped bars: one group per basis term, one bar per labelled coefficient set (e.g. Oja vs learned)."""
    labels = list(coefficient_sets)
    names = list(next(iter(coefficient_sets.values())))
    positions = np.arange(len(names))
    width = 0.8 / len(labels)
    fig, axis = plt.subplots(figsize=(max(8.0, 0.42 * len(names) + 1.5), 4.5))
    for index, label in enumerate(labels):
        values = [coefficient_sets[label][name] for name in names]
        axis.bar(positions + (index - (len(labels) - 1) / 2) * width, values, width, label=label)
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_xticks(positions, names, rotation=70, fontsize=8)
    axis.set(ylabel="coefficient θ_k", title=title or "plasticity-rule coefficients")
    axis.legend(fontsize=8)
    return _save(fig, path)


def plot_landscape_with_tangents(
    frame: pd.DataFrame, path: str | Path, *, x: str, marks: Mapping[str, float] | None = None, title: str = ""
) -> Path:
    """Meta-loss against ``x`` (log axis) with the meta-gradient drawn as a short tangent at every point.

    ``frame`` has columns ``x``, ``meta_loss`` and ``meta_gradient`` (d loss / d log x); tangents that follow the
    curve are the visual form of the finite-difference check. A meta-gradient too large (or not finite) to draw
    within the loss range, the mark of a chaotic inner loop, is shown as a cross instead.
    """
    fig, axis = plt.subplots(figsize=(6.5, 4.5))
    values, losses, slopes = (frame[c].to_numpy() for c in (x, "meta_loss", "meta_gradient"))
    axis.plot(values, losses, "o-", label="final validation loss")
    half_width = 0.25 * np.median(np.diff(np.log(values))) if len(values) > 1 else 0.1
    span = max(float(np.nanmax(losses) - np.nanmin(losses)), 1e-6)
    drawable = np.isfinite(slopes) & (np.abs(slopes) * half_width < 0.5 * span)
    for value, loss, slope in zip(values[drawable], losses[drawable], slopes[drawable]):
        offsets = np.array([-half_width, half_width])
        axis.plot(value * np.exp(offsets), loss + slope * offsets, color="tab:red", linewidth=2)
    axis.plot([], [], color="tab:red", linewidth=2, label="meta-gradient (tangent)")
    if not drawable.all():
        axis.plot(values[~drawable], losses[~drawable], "x", color="tab:red", markersize=10, mew=2,
                  label="meta-gradient exploded")
    axis.set_ylim(np.nanmin(losses) - 0.1 * span, np.nanmax(losses) + 0.15 * span)
    for label, value in (marks or {}).items():
        axis.axvline(value, linestyle=":", color="grey")
        axis.text(value, axis.get_ylim()[1], label, rotation=90, va="top", fontsize=8)
    axis.set_xscale("log")
    axis.set(xlabel=x.replace("_", " "), ylabel="final validation loss", title=title or "meta-loss landscape")
    axis.legend(fontsize=8)
    return _save(fig, path)
