"""What a finished sweep reports: final accuracy per hyperparameter setting, diverged runs, standard figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rulelab.harness.plots import plot_learning_curves  # noqa: E402
from rulelab.sweep.store import run_level_columns, setting_columns  # noqa: E402

STRUCTURE = ("rule", "rule_options", "hidden", "activation")


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's row at its last evaluation."""
    return frame[frame["step"] == frame.groupby("run_id")["step"].transform("max")]


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly: drop NaN (a hyperparameter the rule lacks), numpy scalars to Python."""
    out = {}
    for key, value in record.items():
        value = value.item() if isinstance(value, np.generic) else value
        if not (isinstance(value, float) and math.isnan(value)):
            out[key] = value
    return out


def swept_columns(frame: pd.DataFrame) -> list[str]:
    """Hyperparameter columns: numeric setting columns (``learning_rate``, a rule's scales, ...)."""
    return [c for c in setting_columns(frame)
            if c not in STRUCTURE and pd.api.types.is_float_dtype(frame[c])]


def setting_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per hyperparameter setting: final test accuracy mean ± std over healthy seeds, diverged count."""
    final = final_rows(frame).assign(healthy_accuracy=lambda f: f["test_accuracy"].where(f["diverged_at"] < 0))
    table = final.groupby(setting_columns(frame), dropna=False, sort=False).agg(
        seeds=("seed", "nunique"),
        diverged=("diverged_at", lambda d: int((d >= 0).sum())),
        final_test_accuracy_mean=("healthy_accuracy", "mean"),
        final_test_accuracy_std=("healthy_accuracy", lambda a: float(a.std(ddof=0))),
    )
    return table.reset_index()


def diverged_runs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every run that went non-finite, with its labels and the step at which it was frozen."""
    final = final_rows(frame)
    columns = ["run_id", *run_level_columns(frame), "diverged_at"]
    return [_clean(r) for r in final.loc[final["diverged_at"] >= 0, columns].to_dict("records")]


def summarize_sweep(frame: pd.DataFrame, *, name: str, dataset: str) -> dict[str, Any]:
    """``summary.json`` content of a sweep."""
    return {
        "name": name,
        "dataset": dataset,
        "runs": int(frame["run_id"].nunique()),
        "settings": [_clean(r) for r in setting_table(frame).to_dict("records")],
        "diverged_runs": diverged_runs(frame),
    }


def setting_label(row: pd.Series, swept: list[str]) -> str:
    values = " ".join(f"{k}={row[k]:g}" for k in swept if k in row and not pd.isna(row[k]))
    return f"{row['rule']} [{row['hidden']}] {values}".strip()


def best_settings(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the best setting (highest mean final accuracy) of every structural group, labelled in ``rule``."""
    table = setting_table(frame)
    structure = [c for c in STRUCTURE if c in table]
    score = table["final_test_accuracy_mean"].fillna(-1.0)  # a group whose every run diverged still gets a curve
    best = table.loc[score.groupby([table[c] for c in structure], dropna=False).idxmax()]
    keys = setting_columns(frame)
    swept = swept_columns(frame)
    best = best.assign(label=best.apply(lambda row: setting_label(row, swept), axis=1))
    chosen = frame.merge(best[[*keys, "label"]], on=keys, how="inner")  # pandas matches NaN keys to NaN
    chosen["rule"] = chosen.pop("label")
    return chosen


def plot_sensitivity(frame: pd.DataFrame, path: str | Path) -> Path | None:
    """Final test accuracy against each swept hyperparameter (others at their best), one line per group."""
    table = setting_table(frame)
    swept = [c for c in swept_columns(frame) if table[c].nunique() > 1]
    if not swept:
        return None
    structure = [c for c in STRUCTURE if c in table]
    fig, axes = plt.subplots(1, len(swept), figsize=(5 * len(swept), 3.8), squeeze=False)
    for axis, column in zip(axes[0], swept):
        for group, rows in table.dropna(subset=[column]).groupby(structure, sort=False):
            best = rows.groupby(column)["final_test_accuracy_mean"].max()
            labels = dict(zip(structure, group))
            axis.plot(best.index, best.to_numpy(), marker="o", label=f"{labels['rule']} [{labels.get('hidden', '')}]")
        values = np.sort(table[column].dropna().unique())
        if (values > 0).all() and values[-1] / values[0] >= 2.5:
            axis.set_xscale("log")
        if len(values) <= 8:  # label exactly the swept values
            axis.set_xticks(values, [f"{v:g}" for v in values])
            axis.minorticks_off()
        axis.set(xlabel=column, ylabel="final test accuracy (best over the rest)")
        axis.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_sweep(frame: pd.DataFrame, out_dir: str | Path, title: str = "") -> list[Path]:
    """The sweep's standard figures: best-setting learning curves with alignment angles, and sensitivity."""
    out_dir = Path(out_dir)
    paths = [plot_learning_curves(best_settings(frame), out_dir / "learning_curves.png",
                                  title=title or "best setting per rule: test accuracy")]
    sensitivity = plot_sensitivity(frame, out_dir / "hyperparameter_sensitivity.png")
    return paths + ([sensitivity] if sensitivity else [])


def format_summary(summary: dict[str, Any], max_diverged: int = 10) -> str:
    """Fixed-width text: final test accuracy per setting, then the diverged runs."""
    labels = []
    for row in summary["settings"]:
        swept = " ".join(f"{k}={v:g}" for k, v in row.items()
                         if isinstance(v, float) and not k.startswith("final_test_accuracy"))
        options = f" {row['rule_options']}" if row.get("rule_options") else ""
        labels.append(f"{row['rule']}{options} [{row['hidden']}] {row['activation']} {swept}")
    width = max([len("setting"), *map(len, labels)])
    lines = [f"{'setting':{width}s} {'final test accuracy':>20s} {'seeds':>5s} {'diverged':>8s}"]
    for label, row in zip(labels, summary["settings"]):
        mean, std = row.get("final_test_accuracy_mean"), row.get("final_test_accuracy_std")
        accuracy = "all diverged" if mean is None else f"{100 * mean:.2f} ± {100 * std:.2f}%"
        lines.append(f"{label:{width}s} {accuracy:>20s} {row['seeds']:>5d} {row['diverged']:>8d}")
    diverged = summary["diverged_runs"]
    if diverged:
        lines.append(f"{len(diverged)} run(s) diverged and were frozen at the step shown:")
        for run in diverged[:max_diverged]:
            values = " ".join(f"{k}={v:g}" for k, v in run.items() if isinstance(v, float))
            lines.append(f"  {run['run_id']}  {run['rule']} [{run['hidden']}] {values} seed={run['seed']}: "
                         f"step {run['diverged_at']}")
        if len(diverged) > max_diverged:
            lines.append(f"  ... and {len(diverged) - max_diverged} more (summary.json lists all)")
    return "\n".join(lines)
