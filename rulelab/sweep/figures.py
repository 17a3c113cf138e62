"""Redraw every standard figure from a results folder, choosing the figures from what the folder holds.

Each :class:`FigureRecipe` names a Parquet file, the columns it must have and the figure(s) it draws with the
plotting function the writer of that file uses, so ``rulelab plot DIR`` redraws exactly what the original command
drew (for instance after editing a plotting function, or on results copied from a cluster):

- a sweep folder (``chunks/``): best-setting learning curves with alignment angles, hyperparameter sensitivity;
- ``rulelab compare``: test accuracy and hidden-layer alignment angle over training;
- ``rulelab continual``: accuracy matrices and accuracy over tasks;
- ``rulelab meta-rl``: cumulative regret, training curves, two-step stay probabilities;
- ``rulelab conditioning``: the TD error within a trial across training;
- meta-learning experiments (``meta_history.parquet``): meta-loss and the other tracked quantities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import pandas as pd
import pyarrow.parquet as pq


class FigureRecipe(NamedTuple):
    description: str
    source: str  # Parquet file name inside the results folder
    columns: frozenset[str]  # columns the file must have
    draw: Callable[[pd.DataFrame, Path], list[Path]]


def _learning_curves(frame: pd.DataFrame, folder: Path) -> list[Path]:
    from rulelab.harness.plots import plot_learning_curves

    return [plot_learning_curves(frame, folder / "learning_curves.png", title="test accuracy")]


def _continual(frame: pd.DataFrame, folder: Path) -> list[Path]:
    from rulelab.harness.continual_plots import plot_accuracy_matrices, plot_accuracy_over_tasks

    return [plot_accuracy_matrices(frame, folder / "accuracy_matrices.png"),
            plot_accuracy_over_tasks(frame, folder / "accuracy_over_tasks.png")]


def _regret(frame: pd.DataFrame, folder: Path) -> list[Path]:
    from rulelab.harness.rl_plots import plot_cumulative_regret

    return [plot_cumulative_regret(frame, folder / "cumulative_regret.png")]


def _rl_training(frame: pd.DataFrame, folder: Path) -> list[Path]:
    from rulelab.harness.rl_plots import plot_training_curves

    return [plot_training_curves(frame, folder / "training.png")]


def _stay_probabilities(frame: pd.DataFrame, folder: Path) -> list[Path]:
    from rulelab.harness.rl_plots import plot_stay_probabilities

    return [plot_stay_probabilities(frame, folder / "stay_probabilities.png")]


def _conditioning(frame: pd.DataFrame, folder: Path) -> list[Path]:
    from rulelab.harness.conditioning import redraw_conditioning

    return [redraw_conditioning(frame, folder / "td_errors.png")]


def _meta_history(frame: pd.DataFrame, folder: Path) -> list[Path]:
    from rulelab.meta.plots import plot_meta_history

    tracked = [c for c in frame.columns if c != "step" and pd.api.types.is_numeric_dtype(frame[c])]
    return [plot_meta_history(frame, folder / "meta_learning_curves.png", tracked)]


RECIPES: tuple[FigureRecipe, ...] = (
    FigureRecipe("learning curves and alignment angles", "results.parquet",
                 frozenset({"rule", "seed", "step", "test_accuracy"}), _learning_curves),
    FigureRecipe("accuracy matrices", "results.parquet",
                 frozenset({"rule", "seed", "hparam_index", "trained_task", "eval_task", "accuracy"}), _continual),
    FigureRecipe("cumulative regret", "results.parquet",
                 frozenset({"policy", "kind", "trial", "cumulative_regret"}), _regret),
    FigureRecipe("meta-RL training curves", "training.parquet",
                 frozenset({"learner", "episodes", "episode_regret"}), _rl_training),
    FigureRecipe("two-step stay probabilities", "stay_probabilities.parquet",
                 frozenset({"policy", "rewarded", "common", "stay_probability"}), _stay_probabilities),
    FigureRecipe("TD errors in conditioning", "td_errors.parquet",
                 frozenset({"trial", "phase", "time_step", "td_error", "is_cs", "is_reward"}), _conditioning),
    FigureRecipe("meta-learning curves", "meta_history.parquet", frozenset({"optimizer", "step"}), _meta_history),
)


class NothingToPlotError(ValueError):
    """The folder holds no results a standard figure is drawn from."""


def matching_recipes(folder: Path) -> list[FigureRecipe]:
    """The recipes whose file exists in ``folder`` with every column they need (read from the schema only)."""
    found = []
    for recipe in RECIPES:
        path = folder / recipe.source
        if path.is_file() and recipe.columns <= set(pq.read_schema(path).names):
            found.append(recipe)
    return found


def redraw_figures(folder: str | Path) -> list[Path]:
    """Draw every standard figure the results in ``folder`` support; returns the PNG paths written."""
    from rulelab.sweep.store import chunk_files, load_results
    from rulelab.sweep.summary import plot_sweep

    folder = Path(folder)
    if not folder.is_dir():
        raise NothingToPlotError(f"{str(folder)!r} is not a folder")
    paths: list[Path] = []
    if chunk_files(folder):
        paths += plot_sweep(load_results(folder), folder)
    for recipe in matching_recipes(folder):
        paths += recipe.draw(pd.read_parquet(folder / recipe.source), folder)
    if not paths:
        known = ", ".join(sorted({"chunks/*.parquet (a sweep)", *(r.source for r in RECIPES)}))
        raise NothingToPlotError(f"no results to plot in {str(folder)!r}; looked for {known}")
    return paths
