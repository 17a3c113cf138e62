"""``compare_rules``: every rule against backprop on one data set, all seeds of a rule in one compiled program."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from rulelab.harness.plots import hidden_angle_columns, plot_learning_curves
from rulelab.harness.results import grid_to_frame, write_json, write_parquet
from rulelab.harness.run import run_grid
from rulelab.harness.train import TrainConfig, default_hparams, make_train_program
from rulelab.tasks.supervised import Dataset

DEFAULT_COMPARE_RULES = (
    "backprop",
    "feedback_alignment",
    "direct_feedback_alignment",
    "sign_symmetry",
    "kolen_pollack",
)


def summarize(frame: pd.DataFrame, dataset: str, wall_s: dict[str, float]) -> dict:
    """``summary.json`` content: final test accuracy mean ± std over seeds and the final hidden-layer angle."""
    final = frame[frame["step"] == frame.groupby("rule")["step"].transform("max")]
    angle_columns = hidden_angle_columns(frame)
    rules = {}
    for rule, group in final.groupby("rule", sort=False):
        diverged = group["diverged_at"] >= 0
        accuracy = group.loc[~diverged, "test_accuracy"]
        rules[rule] = {
            "test_accuracy_mean": float(accuracy.mean()) if len(accuracy) else float("nan"),
            "test_accuracy_std": float(accuracy.std(ddof=0)) if len(accuracy) else float("nan"),
            "alignment_angle_deg": float(group[angle_columns].to_numpy().mean()) if angle_columns else float("nan"),
            "seeds": int(group["seed"].nunique()),
            "diverged_runs": int(diverged.sum()),
            "wall_s": float(wall_s[rule]),
        }
    return {"dataset": dataset, "rules": rules}


def compare_rules(
    dataset: Dataset,
    rules: Sequence[str] = DEFAULT_COMPARE_RULES,
    *,
    config: TrainConfig = TrainConfig(),
    learning_rate: float | None = None,
    num_seeds: int = 8,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Train every rule on ``dataset`` for ``num_seeds`` seeds; write Parquet, summary.json and a plot to ``out_dir``."""
    frames, wall_s = [], {}
    for rule in rules:
        rule_config = dataclasses.replace(config, rule=rule)
        hparams = default_hparams(rule_config)
        if learning_rate is not None:
            hparams["learning_rate"] = learning_rate
        start = time.perf_counter()
        program = make_train_program(rule_config, dataset)
        result = run_grid(program, hparams, num_seeds=num_seeds, progress=progress, description=rule)
        wall_s[rule] = time.perf_counter() - start
        frames.append(grid_to_frame(result.metrics, hparams, rule=rule, dataset=dataset.name))
    frame = pd.concat(frames, ignore_index=True)
    summary = summarize(frame, dataset.name, wall_s)
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_parquet(frame, out_dir / "results.parquet")
        write_json(summary, out_dir / "summary.json")
        plot_learning_curves(frame, out_dir / "learning_curves.png", title=f"{dataset.name}: test accuracy")
    return frame, summary


def format_table(summary: dict) -> str:
    """A fixed-width text table of a compare summary."""
    lines = [f"{'rule':28s} {'test accuracy':>18s} {'angle to BP':>12s} {'wall s':>8s}"]
    for rule, row in summary["rules"].items():
        accuracy = f"{100 * row['test_accuracy_mean']:.2f} ± {100 * row['test_accuracy_std']:.2f}%"
        angle = "" if np.isnan(row["alignment_angle_deg"]) else f"{row['alignment_angle_deg']:.1f}°"
        note = f"  ({row['diverged_runs']} diverged)" if row["diverged_runs"] else ""
        lines.append(f"{rule:28s} {accuracy:>18s} {angle:>12s} {row['wall_s']:8.1f}{note}")
    return "\n".join(lines)
